import Foundation

extension ApprovalPolicy {
    /// Only holders of an effective SPOR role may file OMS change requests (R17).
    public static func canFileOMSChangeRequest(hasEffectiveSPORRole: Bool) -> Result<Void, Refusal> {
        hasEffectiveSPORRole
            ? .success(())
            : .failure(Refusal(.noEffectiveRole, .r17, "Request a SPOR role and wait until it is effective before asking to add an organisation."))
    }

    /// Only EMA data stewards decide OMS change requests (R17).
    public static func canDecideOMSChangeRequest(actor: Actor) -> Result<Void, Refusal> {
        actor.staffRoles.contains(.dataSteward)
            ? .success(())
            : .failure(Refusal(.notAuthorised, .r17, "Only an EMA data steward decides OMS change requests."))
    }
}

/// An uploaded document as the client sent it (R10 letters, R17 supporting documents).
public struct Upload: Sendable, Equatable {
    public var fileName: String
    public var contentType: DocumentType
    public var bytes: [UInt8]

    public init(fileName: String, contentType: DocumentType, bytes: [UInt8]) {
        self.fileName = fileName
        self.contentType = contentType
        self.bytes = bytes
    }
}

/// A request to add an organisation to OMS, as filed (R17).
public struct OMSChangeRequestDraft: Sendable, Equatable {
    public var name: String
    public var country: String
    public var city: String
    public var address: String?
    public var justification: String?
    public var documents: [Upload]

    public init(name: String, country: String, city: String, address: String?, justification: String?, documents: [Upload]) {
        self.name = name
        self.country = country
        self.city = city
        self.address = address
        self.justification = justification
        self.documents = documents
    }
}

extension ApprovalPolicy {
    /// Whether `text` is a two-letter ISO country code such as `NL`.
    public static func isCountryCode(_ text: String) -> Bool { text.count == 2 && text.allSatisfy { $0.isASCII && $0.isUppercase } }

    /// Checks an OMS change request's fields in the order a person fixes them, each failure naming its field (R17):
    /// name, country and city; at most 500 characters of address and 2000 of justification; 1 to 10 supporting
    /// documents, each a named PDF, PNG or JPEG of at most 10 MB whose bytes are the type it claims. Returns the
    /// draft with names trimmed.
    public static func validate(_ draft: OMSChangeRequestDraft) -> Result<OMSChangeRequestDraft, Refusal> {
        func refuse(_ message: String, _ field: String) -> Result<OMSChangeRequestDraft, Refusal> {
            .failure(Refusal(.validationFailed, .r17, message, field: field))
        }
        var draft = draft
        draft.name = draft.name.trimmingCharacters(in: .whitespacesAndNewlines)
        draft.city = draft.city.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...300).contains(draft.name.count) else { return refuse("name needs 1 to 300 characters.", "name") }
        guard isCountryCode(draft.country) else { return refuse("country must be a two-letter ISO code such as NL.", "country") }
        guard (1...200).contains(draft.city.count) else { return refuse("city needs 1 to 200 characters.", "city") }
        if let address = draft.address, address.count > 500 { return refuse("address has at most 500 characters.", "address") }
        if let justification = draft.justification, justification.count > 2000 {
            return refuse("justification has at most 2000 characters.", "justification")
        }
        guard (1...10).contains(draft.documents.count) else { return refuse("Attach 1 to 10 supporting documents.", "documents") }
        for index in draft.documents.indices {
            let field = "documents[\(index)]"
            let document = draft.documents[index]
            let fileName = document.fileName.trimmingCharacters(in: .whitespacesAndNewlines)
            guard (1...255).contains(fileName.count) else { return refuse("\(field).fileName needs 1 to 255 characters.", "\(field).fileName") }
            guard !document.bytes.isEmpty, document.bytes.count <= DocumentType.maximumSize else {
                return refuse("\(field) must hold 1 byte to 10 MB.", "\(field).contentBase64")
            }
            guard document.contentType.matches(document.bytes) else {
                return refuse("\(field) is not a \(document.contentType.rawValue) file.", "\(field).contentBase64")
            }
            draft.documents[index].fileName = fileName
        }
        return .success(draft)
    }

    /// A data steward's decision on a change request: only pending ones, and a rejection needs a reason (R17, R18).
    public static func decideOMSChangeRequest(
        id: Int64, status: ChangeRequestStatus, approve: Bool, reason: String?, requester: AccountID? = nil, decider: AccountID? = nil
    ) -> Result<Void, Refusal> {
        guard status == .pending else {
            return .failure(Refusal(.notPending, .r18, "Change request \(id) is already \(status.rawValue)."))
        }
        if let requester, requester == decider {
            return .failure(Refusal(.selfApproval, .r12, "You filed change request \(id): another EMA data steward decides it."))
        }
        if !approve && (reason ?? "").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            return .failure(Refusal(.reasonRequired, .r17, "Give the requester a reason for the rejection.", field: "reason"))
        }
        if let reason, reason.count > 2000 {
            return .failure(Refusal(.validationFailed, .r17, "reason has at most 2000 characters.", field: "reason"))
        }
        return .success(())
    }
}
