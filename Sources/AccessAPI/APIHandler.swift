import OpenAPIRuntime

/// Implements the generated `APIProtocol` (from `openapi.yaml`).
struct APIHandler {}
