"""Object stores on loopback for the tests: GCS (gcp-storage-emulator, in
this process, on a thread) and S3 (moto's server). Both bind 127.0.0.1 on a
port the system picks; the fixtures in conftest.py start and stop them.

gcp-storage-emulator lacks two things real GCS has, which the code under
test relies on; `patch_gcs_emulator` adds them to the in-process server:

* preconditions on uploads (`ifGenerationMatch=0`: create only if absent,
  answered 412): the workdir lock object on a bucket;
* the `x-goog-generation` header on downloads, which tensorstore (orbax's
  array I/O) needs for its conditional writes.
"""

import contextlib
import logging
import socket


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@contextlib.contextmanager
def gcs_emulator(default_bucket: str):
  """URL of an in-memory gcp-storage-emulator holding `default_bucket`."""
  # pylint: disable-next=g-import-not-at-top
  from gcp_storage_emulator.server import create_server
  logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
  patch_gcs_emulator()
  server = create_server("127.0.0.1", 0, in_memory=True,
                         default_bucket=default_bucket)
  server.start()
  httpd = server._api._httpd  # pylint: disable=protected-access
  # A client that hangs up early (a killed trainer) is no test failure.
  httpd.handle_error = lambda request, address: None
  host, port = httpd.server_address[:2]
  try:
    yield f"http://{host}:{port}"
  finally:
    server.stop()


@contextlib.contextmanager
def s3_emulator():
  """URL of moto's S3 server (ThreadedMotoServer takes no port 0)."""
  # pylint: disable-next=g-import-not-at-top
  from moto.server import ThreadedMotoServer
  port = free_port()
  server = ThreadedMotoServer(ip_address="127.0.0.1", port=port,
                              verbose=False)
  server.start()
  try:
    yield f"http://127.0.0.1:{port}"
  finally:
    server.stop()


def _replace_handler(original, replacement):
  # pylint: disable-next=g-import-not-at-top
  from gcp_storage_emulator import server as srv
  srv.HANDLERS = tuple(
      (rx, {m: (replacement if f is original else f) for m, f in h.items()})
      for rx, h in srv.HANDLERS)


def patch_gcs_emulator() -> None:
  """Generation headers on downloads, preconditions on uploads (once)."""
  # pylint: disable=g-import-not-at-top
  from http import HTTPStatus
  from gcp_storage_emulator.exceptions import NotFound
  from gcp_storage_emulator.handlers import objects
  # pylint: enable=g-import-not-at-top
  if getattr(objects.insert, "patched", False):
    return
  download, insert = objects.download, objects.insert

  def download_with_generation(request, response, storage, *args, **kwargs):
    try:
      obj = storage.get_file_obj(request.params["bucket_name"],
                                 request.params["object_id"])
      response["x-goog-generation"] = str(obj["generation"])
      response["x-goog-metageneration"] = str(obj.get("metageneration", 1))
    except Exception:  # pylint: disable=broad-except
      pass  # Missing: the original handler answers 404.
    return download(request, response, storage, *args, **kwargs)

  def name_of(request):
    if "name" in request.query:
      return request.query["name"][0]
    data = request.data
    if isinstance(data, dict):
      return (data.get("meta") or data).get("name")
    return None

  def insert_with_precondition(request, response, storage, *args, **kwargs):
    wanted = request.query.get("ifGenerationMatch")
    name = name_of(request)
    if wanted and "upload_id" not in request.query and name is not None:
      try:
        current = str(storage.get_file_obj(request.params["bucket_name"],
                                           name)["generation"])
      except NotFound:
        current = "0"
      if current != wanted[0]:
        response.status = HTTPStatus.PRECONDITION_FAILED
        response.json({"error": {"code": 412, "message": "conditionNotMet"}})
        return None
    return insert(request, response, storage, *args, **kwargs)

  insert_with_precondition.patched = True
  objects.download = download_with_generation
  objects.insert = insert_with_precondition
  _replace_handler(download, download_with_generation)
  _replace_handler(insert, insert_with_precondition)
