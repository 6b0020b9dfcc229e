"""Training: a checked config, the input pipeline, steps, checkpoints.

Config values checked once before any work (`run_config`), datasets padded
and sharded across devices and hosts (`input_pipeline`, `distributed`), the
pmapped optimisation step (`train_step`), the loop with exact resume
(`train`), checkpoints (`checkpoints`), the workdir lock (`workdir_lock`)
and metric writers (`metric_writers`). May import every layer below.
"""
