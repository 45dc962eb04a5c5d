import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

// R10: a first super user is approved only on an open service desk ticket with a letter from a signatory.

extension SQLRuleTests {
    @Suite("R10: the service desk ticket and its letter")
    struct Tickets {
        @Test("R10: approving a first super user needs an open service desk ticket")
        func ticketRequired() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let desk = try await f.staff(.serviceDesk)
                let (applicant, request) = try await f.firstSuperUserRequest(of: org, ticket: false)
                let refused = await attempt(f, as: desk) { conn in
                    try await conn.approve(request, by: desk, requester: applicant, role: .superUser, organisation: org, first: true)
                }
                #expect(refused == Answer("ticket-required", "R10"))
                #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "pending")

                // Control: once the ticket is open the same statements commit.
                let filed = try await f.requests.request(AccessRequestID(request), actor: applicant)
                try await f.openTicket(for: filed, by: applicant)
                let approved = await attempt(f, as: desk) { conn in
                    try await conn.approve(request, by: desk, requester: applicant, role: .superUser, organisation: org, first: true)
                }
                #expect(approved == nil)
                #expect(
                    try await f.ownerValue(
                        "SELECT first_super_user::text FROM role_assignments WHERE access_request_id = \(request)") == "true")
            }
        }

        @Test("R19: a ticket is closed as delegated only once its request is the organisation's, and by the actor")
        func delegatedOnlyWhenRerouted() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let desk = try await f.staff(.serviceDesk)
                let (_, request) = try await f.firstSuperUserRequest(of: org, ticket: true)
                let ticket = try await f.ownerValue("SELECT id::text FROM service_desk_tickets WHERE access_request_id = \(request)")
                let refused = await attempt(f, as: desk) { conn in
                    try await conn.query(
                        """
                        UPDATE service_desk_tickets SET status = 'resolved', resolution = 'delegated', resolved_by = \(desk.pgUUID)
                        WHERE id = \(Int64(ticket)!)
                        """, logger: log)
                }
                #expect(refused == Answer("routing-mismatch", "R19"))
                #expect(try await f.ownerValue("SELECT status FROM service_desk_tickets WHERE id = \(Int64(ticket)!)") == "open")
            }
        }

        @Test("R19: granting a first super user in SQL re-routes the other candidates at once and closes their tickets as delegated")
        func firstSuperUserDelegatesTheOtherTickets() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let desk = try await f.staff(.serviceDesk)
                let (winner, first) = try await f.firstSuperUserRequest(of: org, ticket: true)
                let (_, second) = try await f.firstSuperUserRequest(of: org, ticket: true)
                let approved = await attempt(f, as: desk) { conn in
                    try await conn.approve(first, by: desk, requester: winner, role: .superUser, organisation: org, first: true)
                }
                #expect(approved == nil)
                let ticket = try await f.ownerValue("SELECT id::text FROM service_desk_tickets WHERE access_request_id = \(second)")
                #expect(
                    try await f.ownerQuery(
                        """
                        SELECT t.status || ' ' || t.resolution || ' ' || (t.resolved_by = \(desk.pgUUID))::text || ' ' || r.approver_kind
                        FROM service_desk_tickets t JOIN access_requests r ON r.id = t.access_request_id WHERE t.id = \(Int64(ticket)!)
                        """) == ["resolved delegated true organisation-super-users"])
                #expect(
                    try await f.ownerQuery(
                        """
                        SELECT action FROM audit_events WHERE subject_type = 'service_desk_ticket' AND subject_id = \(ticket)
                        AND after->>'resolution' = 'delegated'
                        """) == ["service-desk-ticket.resolved"])
                #expect(
                    try await f.ownerQuery(
                        "SELECT template FROM notification_outbox WHERE subject_type = 'service_desk_ticket' AND subject_id = \(ticket) ORDER BY id")
                        == ["ticket-opened", "ticket-resolved"])
            }
        }

        @Test("R10: a ticket's subject names \"SPOR super user role access\" and quotes the request")
        func ticketSubject() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let (applicant, request) = try await f.firstSuperUserRequest(of: org, ticket: false)
                let letter = ByteBuffer(bytes: Fixture.pdf)
                @Sendable func fileTicket(subject: String, signatoryOrganisation: OrganisationID, authority: Bool) async -> Answer? {
                    await attempt(f, as: applicant) { conn in
                        let document = UUID()
                        try await conn.query(
                            """
                            INSERT INTO documents (id, owner_id, file_name, content_type, bytes, sha256, size)
                            VALUES (\(document), \(applicant.pgUUID), 'affiliation.pdf', 'application/pdf', \(letter), sha256(\(letter)),
                                    octet_length(\(letter)))
                            """, logger: log)
                        let ticket = try await conn.text(
                            """
                            INSERT INTO service_desk_tickets (organisation_id, access_request_id, requester_id, subject, signatory_name,
                                signatory_job_title, signatory_email, signatory_organisation_id, signatory_has_managerial_authority,
                                letter_document_id)
                            VALUES (\(org.rawValue), \(request), \(applicant.pgUUID), \(subject), 'Dr. A. Director', 'Head of Regulatory Affairs',
                                    'director@example.com', \(signatoryOrganisation.rawValue), \(authority), \(document))
                            RETURNING id::text
                            """)
                        try await conn.audit(
                            actor: applicant, organisation: org, action: "service-desk-ticket.opened",
                            subjectType: "service_desk_ticket", subjectID: ticket)
                        try await conn.notify(template: "ticket-opened", subjectType: "service_desk_ticket", subjectID: ticket)
                    }
                }
                let other = try await f.organisation()
                #expect(
                    await fileTicket(
                        subject: "Please make me super user – request ID \(request)", signatoryOrganisation: org,
                        authority: true) == Answer("r10_subject_names_the_process"))
                #expect(
                    await fileTicket(
                        subject: "SPOR super user role access – request ID 1", signatoryOrganisation: org,
                        authority: true) == Answer("r10_subject_quotes_the_request"))
                // The id as a whole number: a longer number that contains it is another request (0030).
                for subject in [
                    "SPOR super user role access – request ID \(request)9", "SPOR super user role access – request ID 9\(request)",
                    "SPOR super user role access \(request) – request ID 7",
                ] {
                    #expect(
                        await fileTicket(subject: subject, signatoryOrganisation: org, authority: true)
                            == Answer("r10_subject_quotes_the_request"), "\(subject)")
                }
                #expect(
                    await fileTicket(
                        subject: "SPOR super user role access – request ID \(request)", signatoryOrganisation: other,
                        authority: true) == Answer("r10_signatory_of_the_organisation"))
                #expect(
                    await fileTicket(
                        subject: "SPOR super user role access – request ID \(request)", signatoryOrganisation: org,
                        authority: false) == Answer("r10_signatory_has_authority"))
                #expect(try await f.ownerValue("SELECT count(*)::text FROM service_desk_tickets") == "0")
                // Control: a correct ticket commits, due 24 hours after it was opened.
                #expect(
                    await fileTicket(
                        subject: "SPOR Super user role access – request ID \(request)", signatoryOrganisation: org,
                        authority: true) == nil)
                #expect(
                    try await f.ownerValue(
                        "SELECT (due_at = opened_at + interval '24 hours')::text FROM service_desk_tickets WHERE access_request_id = \(request)")
                        == "true")
            }
        }

        @Test("R10: a document's bytes match its declared content type")
        func documentContentMatchesType() async throws {
            try await Fixture.with { f in
                let user = try await f.user()
                @Sendable func upload(_ bytes: [UInt8], as contentType: String) async -> Answer? {
                    let buffer = ByteBuffer(bytes: bytes)
                    return await attempt(f, as: user) { conn in
                        try await conn.query(
                            """
                            INSERT INTO documents (id, owner_id, file_name, content_type, bytes, sha256, size)
                            VALUES (\(UUID()), \(user.pgUUID), 'letter', \(contentType), \(buffer), sha256(\(buffer)), octet_length(\(buffer)))
                            """, logger: log)
                    }
                }
                #expect(await upload(Array("just some text, not a PDF".utf8), as: "application/pdf") == Answer("r10_content_matches_type"))
                #expect(await upload(Fixture.pdf, as: "image/png") == Answer("r10_content_matches_type"))
                #expect(await upload(Fixture.pdf, as: "image/jpeg") == Answer("r10_content_matches_type"))
                // The signature alone is not a file of that type: header and trailer (0030).
                #expect(await upload(Array("%PDF-".utf8), as: "application/pdf") == Answer("r10_content_structure"))
                #expect(await upload(Array("%PDF-1.7 but never ends".utf8), as: "application/pdf") == Answer("r10_content_structure"))
                #expect(await upload(Array(Fixture.png.prefix(16)), as: "image/png") == Answer("r10_content_structure"))
                #expect(await upload([0xFF, 0xD8, 0xFF, 0xE0, 0x00], as: "image/jpeg") == Answer("r10_content_structure"))
                #expect(try await f.ownerValue("SELECT count(*)::text FROM documents") == "0")
                #expect(await upload(Fixture.pdf, as: "application/pdf") == nil)
                #expect(await upload(Fixture.png, as: "image/png") == nil)
                #expect(await upload([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0xFF, 0xD9], as: "image/jpeg") == nil)
                #expect(try await f.ownerValue("SELECT count(*)::text FROM documents") == "3")
            }
        }
    }
}
