import Foundation

/// What a service desk ticket asking for a first super user must satisfy (R10), checked before it is stored.
public enum TicketPolicy {
    /// The phrase the subject must contain (case-insensitive), as the seed process says.
    public static let subjectPhrase = "SPOR super user role access"
    /// Largest affiliation letter accepted.
    public static let maximumLetterSize = DocumentType.maximumSize

    /// The access request id quoted in a subject such as "SPOR Super user role access – request ID 10123".
    public static func quotedRequestID(in subject: String) -> AccessRequestID? {
        guard let range = subject.range(of: "request id", options: .caseInsensitive) else { return nil }
        let digits = subject[range.upperBound...].drop { !$0.isNumber }.prefix { $0.isNumber && $0.isASCII }
        return Int64(digits).map(AccessRequestID.init)
    }

    /// Whether the service desk may decide a ticket now (R10, R18, R19): an open ticket yes; a resolved one no, and a
    /// delegated one says where its request went.
    public static func decision(
        ticket: Int64, status: TicketStatus, resolution: TicketResolution?, request: AccessRequestID, organisation: OrganisationID
    ) -> Refusal? {
        switch (status, resolution) {
        case (.open, _):
            return nil
        case (.resolved, .delegated?):
            return Refusal(
                .ticketDelegated, .r19,
                "Ticket \(ticket) was closed as delegated: \(organisation) has a super user now, and its super users decide request \(request)."
            )
        case (.resolved, _):
            return Refusal(.notPending, .r18, "Ticket \(ticket) is already resolved (\(resolution?.rawValue ?? "resolved")).")
        }
    }

    /// The facts about a ticket being opened.
    public struct Facts: Sendable {
        public var subject: String
        public var request: RequestSnapshot
        public var opener: AccountID
        public var signatoryOrganisation: OrganisationID
        public var signatoryHasManagerialAuthority: Bool
        public var letter: [UInt8]
        public var letterContentType: DocumentType

        public init(
            subject: String, request: RequestSnapshot, opener: AccountID, signatoryOrganisation: OrganisationID,
            signatoryHasManagerialAuthority: Bool, letter: [UInt8], letterContentType: DocumentType
        ) {
            self.subject = subject
            self.request = request
            self.opener = opener
            self.signatoryOrganisation = signatoryOrganisation
            self.signatoryHasManagerialAuthority = signatoryHasManagerialAuthority
            self.letter = letter
            self.letterContentType = letterContentType
        }
    }

    /// Checks R10 in the order a person fixes them; each failure names the field.
    public static func validate(_ facts: Facts) -> Result<DocumentType, Refusal> {
        let request = facts.request
        guard request.requester == facts.opener else {
            return .failure(Refusal(.notFound, .r13, "Access request \(request.id) not found.", field: "accessRequestId"))
        }
        guard request.role == .superUser, request.approverKind == .emaServiceDesk, request.status == .pending else {
            return .failure(
                Refusal(
                    .validationFailed, .r10,
                    "Request \(request.id) is not a pending first super user request; only those go to the EMA service desk.",
                    field: "accessRequestId"))
        }
        guard facts.subject.range(of: subjectPhrase, options: .caseInsensitive) != nil else {
            return .failure(Refusal(.validationFailed, .r10, "The subject must contain \"\(subjectPhrase)\".", field: "subject"))
        }
        guard facts.subject.contains(String(request.id.rawValue)) else {
            return .failure(
                Refusal(
                    .validationFailed, .r10, "The subject must quote the access request id (\"request ID \(request.id)\").", field: "subject"))
        }
        guard facts.signatoryOrganisation == request.organisation else {
            return .failure(
                Refusal(
                    .validationFailed, .r10, "The signatory must work for the organisation of the request.",
                    field: "signatory.organisationId"))
        }
        guard facts.signatoryHasManagerialAuthority else {
            return .failure(
                Refusal(
                    .validationFailed, .r10, "The signatory must hold managerial authority to sign the affiliation letter.",
                    field: "signatory.hasManagerialAuthority"))
        }
        guard !facts.letter.isEmpty, facts.letter.count <= maximumLetterSize else {
            return .failure(
                Refusal(
                    .validationFailed, .r10, "The affiliation letter must be between 1 byte and 10 MB.", field: "letter.contentBase64"))
        }
        guard let type = DocumentType.sniff(facts.letter) else {
            return .failure(
                Refusal(
                    .validationFailed, .r10, "The affiliation letter must be a PDF, PNG or JPEG file.", field: "letter.contentBase64"))
        }
        guard type == facts.letterContentType else {
            return .failure(
                Refusal(
                    .validationFailed, .r10, "The letter is a \(type.rawValue) file, not \(facts.letterContentType.rawValue).",
                    field: "letter.contentType"))
        }
        return .success(type)
    }
}
