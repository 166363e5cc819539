"""The gRPC side of waQup: the request path and server (`api`), one declaration,
servicers and wiring per bounded context (`contexts`), the Envoy edge (`edge`)
and the process runtime: settings, composition root, CLI, workers, relay,
scheduler (`runtime`). The only layer that imports generated protobuf code and
wires adapters to cores."""
