import Foundation

/// R21: time-bound grants. A request may ask for access until a date; the approver may shorten it, never lengthen it;
/// an assignment past its end is no longer active; a role held until a date may be renewed by a new request.
extension ApprovalPolicy {
    /// Checks the end a requester asks for: only organisation roles end, and not before they could be granted.
    public static func requestedEnd(_ until: Date?, role: Role, now: Date) -> Result<Void, Refusal> {
        guard let until else { return .success(()) }
        guard role.needsOrganisation else {
            return .failure(Refusal(.validationFailed, .r21, "The unaffiliated role has no end date; leave accessUntil out.", field: "accessUntil"))
        }
        guard until > now else {
            return .failure(
                Refusal(.grantEndInPast, .r21, "Access cannot end before it is granted; choose a later accessUntil.", field: "accessUntil"))
        }
        return .success(())
    }

    /// The end of the grant an approval makes: the approver's choice if given (at most what was asked for), else the
    /// end asked for, else none.
    public static func grantEnd(requested: Date?, chosen: Date?, now: Date) -> Result<Date?, Refusal> {
        if let chosen, let requested, chosen > requested {
            return .failure(
                Refusal(
                    .grantLengthened, .r21,
                    "Access may end earlier than the requester asked (\(requested.formatted(.iso8601))), never later.",
                    field: "accessUntil"))
        }
        let end = chosen ?? requested
        if let end, end <= now {
            return .failure(
                Refusal(.grantEndInPast, .r21, "Access cannot end before it is granted; choose a later accessUntil.", field: "accessUntil"))
        }
        return .success(end)
    }

    /// Whether an assignment with these revocation and end times is active at `now` (R8, R9, R13, R14 count only
    /// active ones).
    public static func isActive(revokedAt: Date?, endsAt: Date?, now: Date) -> Bool {
        revokedAt == nil && (endsAt.map { $0 > now } ?? true)
    }
}
