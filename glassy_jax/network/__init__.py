"""The network: graphs in, per-particle propensities out.

The faithful Bapst et al. network as embed -> process -> decode
(`models`, `processors`, `layers`), the GCN variant (`gcn`), memory-bounded
edge updates (`chunked_edges`), the model options (`model_config`) and the
node inputs built from physics (`model_inputs`, `descriptors`), and the
reader of DeepMind's TensorFlow checkpoint (`tf_checkpoint`). May import
`errors`, `formats` and `physics`; knows nothing of optimisers or files
written by training.
"""
