"""Generated gRPC code and the .proto it comes from."""
