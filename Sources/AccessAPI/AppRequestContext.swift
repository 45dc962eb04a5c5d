import Hummingbird
import Logging

/// The request context of every route: Hummingbird's core storage plus the request id.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID: String = ""

    public init(source: Source) {
        self.coreContext = .init(source: source)
    }
}
