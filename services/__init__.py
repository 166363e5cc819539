"""gRPC servicers, interceptors, composition root and entry points. The only layer
that imports generated protobuf code and wires adapters to cores."""
