import AccessDomain
import AccessStore
import Foundation
import HTTPTypes
import OpenAPIRuntime

extension Problem {
    /// The one place that turns domain refusals and store errors into problem responses.
    static func from(_ error: any Error) -> Problem? {
        switch error {
        case let problem as Problem:
            return problem
        case let serverError as ServerError:
            // Errors from the generated layer: our own thrown problems, or input it could not decode.
            if let inner = Problem.from(serverError.underlyingError), !(serverError.underlyingError is DecodingError) {
                return inner
            }
            if let invalid = invalidDomainValue(serverError) {
                return invalid
            }
            // The handler ran and failed with something unmapped (a database error, say): that is ours, a logged 500,
            // not a "bad request" that would hand the database's words to the client.
            if serverError.operationInput != nil && !(serverError.underlyingError is DecodingError) {
                return nil
            }
            return Problem(
                status: .badRequest, code: "bad-request", title: "Bad request",
                detail: "The request could not be read: \(Self.describe(serverError.underlyingError))")
        case let refusal as Refusal where refusal.code == .notAuthenticated:
            return .sessionNotValid
        case let refusal as Refusal:
            var extensions = ["rule": refusal.rule.rawValue]
            if let field = refusal.field { extensions["field"] = field }
            return Problem(
                status: status(of: refusal.code), code: refusal.code.rawValue, title: title(of: refusal.code),
                detail: refusal.message, extensions: extensions)
        case let failure as SignInFailure:
            switch failure {
            case .invalidCredentials:
                return Problem(
                    status: .unauthorized, code: "invalid-credentials", title: "Sign-in failed",
                    detail: "The e-mail address or the password is wrong.")
            case .accountPending:
                return Problem(
                    status: .forbidden, code: "account-pending", title: "Account not verified",
                    detail: "Confirm your e-mail address with the token we sent before signing in.")
            case .tooManyAttempts(let until):
                return Problem(
                    status: .tooManyRequests, code: "too-many-attempts", title: "Too many failed sign-ins",
                    detail: "Five sign-ins failed within 15 minutes; try again after \(until.formatted(.iso8601)).",
                    extensions: ["retryAfter": until.formatted(.iso8601)],
                    retryAfter: max(1, Int(until.timeIntervalSinceNow.rounded(.up))))
            case .accountDisabled:
                return Problem(
                    status: .forbidden, code: "account-disabled", title: "Account disabled",
                    detail: "This account is disabled; contact the EMA service desk.")
            }
        case let storeError as StoreError:
            switch storeError {
            case .constraintViolation(let constraint, _):
                return Problem(
                    status: .unprocessableContent, code: "validation-failed", title: "Validation failed",
                    detail: "The data breaks the rule \(constraint).", extensions: ["constraint": constraint])
            case .ruleViolation(let code, let rule, let message):
                return Problem(status: .conflict, code: code, title: "Refused", detail: message, extensions: ["rule": rule])
            case .retryable:
                return Problem(
                    status: .serviceUnavailable, code: "busy", title: "Busy",
                    detail: "Other changes to the same data kept this one from finishing. Nothing was changed; try again in a moment.",
                    retryAfter: 1)
            case .unavailable(let reason):
                return .databaseUnavailable(reason)
            case .database:
                return nil
            }
        default:
            // A connection error that reached here unmapped is still the database being away, not a bug of ours.
            return StoreErrors.unavailability(error).map(Problem.databaseUnavailable)
        }
    }

    /// A malformed organisation or account id (the domain types decode the API's ids): 422 `validation-failed`
    /// naming the field — the body's coding path, or the path or query parameter that holds the text.
    static func invalidDomainValue(_ error: ServerError) -> Problem? {
        guard case .dataCorrupted(let context) = error.underlyingError as? DecodingError,
            let invalid = context.underlyingError as? InvalidDomainValue
        else { return nil }
        var field = context.codingPath.map(\.stringValue).joined(separator: ".")
        if field.isEmpty {
            let query = error.request.path.flatMap { URLComponents(string: $0)?.queryItems } ?? []
            field =
                error.requestMetadata.pathParameters.first { $0.value == Substring(invalid.text) }?.key
                ?? query.first { $0.value == invalid.text }?.name ?? "input"
        }
        return .validation("\(field) \(invalid.description).", field: field)
    }

    static func status(of code: RefusalCode) -> HTTPResponse.Status {
        switch code {
        case .notFound: .notFound
        case .notAuthenticated: .unauthorized
        case .securityQuestionsRequired, .accountNotActive, .selfApproval, .notAuthorised, .noEffectiveRole: .forbidden
        case .validationFailed, .reasonRequired, .organisationRequired, .organisationNotAllowed, .staffRoleNotRequestable,
            .unknownOrganisation, .grantEndInPast, .grantLengthened:
            .unprocessableContent
        case .duplicateRequest, .alreadyHeld, .noSuperUser, .delegatedToOrganisation, .firstSuperUserNeedsEMA, .ticketRequired,
            .lastSuperUser, .notPending, .requestExpired, .accountExists, .immutable, .notFirstSuperUserRequest, .routingMismatch,
            .grantMissing, .activationDelay, .auditActor, .auditOrganisation, .auditSubject, .auditImmutable, .auditRequired,
            .notificationRequired, .notDead, .ticketDelegated:
            .conflict
        }
    }

    static func title(of code: RefusalCode) -> String {
        code.rawValue.split(separator: "-").joined(separator: " ").capitalizedFirst
    }

    static func describe(_ error: any Error) -> String {
        if let decoding = error as? DecodingError {
            switch decoding {
            case .dataCorrupted(let context), .typeMismatch(_, let context), .valueNotFound(_, let context):
                return context.codingPath.map(\.stringValue).joined(separator: ".") + ": " + context.debugDescription
            case .keyNotFound(let key, _):
                return "missing field \(key.stringValue)"
            @unknown default:
                return "invalid JSON"
            }
        }
        return "\(error)"
    }
}

extension String {
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
