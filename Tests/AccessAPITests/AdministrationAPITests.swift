import AccessAPITestSupport
import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Testing

@Suite("Administration API: members, service desk queue, OMS change requests, audit trail, outbox")
struct AdministrationAPITests {
    static let png = Fixture.png

    // MARK: Seed scenario (2)

    @Test(
        "Seed (2), organisation not in OMS: register, verify, unaffiliated role (automatic), OMS change request with a PDF, a data steward approves (R17), the first super user request goes to the EMA service desk (R8)"
    )
    func organisationNotInOMS() async throws {
        try await Fixture.with { f in
            try await f.administration.addStaff(
                email: "steward@ema.example", displayName: "Steward", role: .dataSteward, password: "steward password 1", bcryptCost: 4)
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let registered = try await api.call(
                    .post, "/v1/accounts", ["email": "dana@newco.example", "displayName": "Dana", "password": "correct horse battery"])
                #expect(registered.status == .created)
                let token = try await f.verificationToken(sentTo: "dana@newco.example")
                #expect(try await api.call(.post, "/v1/accounts/verify", ["token": token]).status == .ok)
                let session = try await api.call(.post, "/v1/sessions", ["email": "dana@newco.example", "password": "correct horse battery"])
                let dana = try #require(session["token"] as? String)
                let answers = [
                    ["question": "First pet?", "answer": "Rex"], ["question": "Birth city?", "answer": "Leiden"],
                    ["question": "School?", "answer": "Regenboog"],
                ]
                #expect(try await api.call(.put, "/v1/me/security-questions", token: dana, ["answers": answers]).status == .noContent)

                // Without an effective SPOR role no change request (R17).
                let pdf = Data(Fixture.pdf).base64EncodedString()
                let change: [String: Any] = [
                    "name": "NewCo Biologics", "country": "BE", "city": "Gent", "address": "Kouter 1",
                    "justification": "Our company is not in OMS yet.",
                    "documents": [["fileName": "chamber-of-commerce.pdf", "contentType": "application/pdf", "contentBase64": pdf]],
                ]
                let tooEarly = try await api.call(.post, "/v1/organisation-change-requests", token: dana, change)
                #expect(tooEarly.status == .forbidden && tooEarly.code == "no-effective-role")

                // "Not in OMS" 1: the unaffiliated role, approved by the system at once (R5).
                let unaffiliated = try await api.call(.post, "/v1/access-requests", token: dana, ["role": "spor-unaffiliated-user"])
                #expect(unaffiliated.status == .created)
                #expect(unaffiliated["status"] as? String == "approved" && unaffiliated["approverKind"] as? String == "automatic")

                // "Not in OMS" 2: the change request with its supporting document.
                let filed = try await api.call(.post, "/v1/organisation-change-requests", token: dana, change)
                #expect(filed.status == .created)
                #expect(filed["status"] as? String == "pending" && filed["documentCount"] as? Int == 1 && filed["country"] as? String == "BE")
                let changeID = try #require(filed["id"] as? Int)
                #expect(
                    try await f.ownerQuery(
                        "SELECT d.content_type FROM oms_change_request_documents c JOIN documents d ON d.id = c.document_id WHERE c.change_request_id = \(Int64(changeID))"
                    )
                        == ["application/pdf"])

                // The requester may not decide it; the data steward sees it among all and approves.
                let selfApproval = try await api.call(.post, "/v1/organisation-change-requests/\(changeID)/approve", token: dana)
                #expect(selfApproval.status == .forbidden)
                let steward = try await api.signIn(email: "steward@ema.example", password: "steward password 1")
                let pending = try await api.call(.get, "/v1/organisation-change-requests?status=pending", token: steward)
                #expect(pending.items.map { $0["id"] as? Int } == [changeID])
                let approved = try await api.call(.post, "/v1/organisation-change-requests/\(changeID)/approve", token: steward)
                #expect(approved.status == .ok && approved["status"] as? String == "approved")
                let organisationID = try #require(approved["organisationId"] as? String)
                #expect(OrganisationID(organisationID) != nil)
                let again = try await api.call(.post, "/v1/organisation-change-requests/\(changeID)/approve", token: steward)
                #expect(again.status == .conflict && again.code == "not-pending")

                // The organisation is in OMS; Dana tracks her change request.
                #expect(try await api.call(.get, "/v1/organisations/\(organisationID)").status == .ok)
                let mine = try await api.call(.get, "/v1/organisation-change-requests", token: dana)
                #expect(mine.items.first?["organisationId"] as? String == organisationID)

                // Then the first super user request for it: the EMA service desk approves it (R8).
                let superUser = try await api.call(
                    .post, "/v1/access-requests", token: dana, ["role": "spor-industry-super-user", "organisationId": organisationID])
                #expect(superUser.status == .created && superUser["approverKind"] as? String == "ema-service-desk")
            }
            #expect(try await f.ownerQuery("SELECT template FROM notification_outbox WHERE template = 'oms-change-request-decided'").count == 1)
            #expect(try await f.brokenBookkeeping() == [])
        }
    }

    @Test("R17/R12 through HTTP: a data steward does not decide their own change request (403 self-approval); another steward does")
    func stewardDoesNotDecideOwnChangeRequest() async throws {
        try await Fixture.with { f in
            let steward = try await f.staff(.dataSteward)
            let other = try await f.staff(.dataSteward)
            _ = try await f.requests.submit(actor: steward, role: .unaffiliatedUser, organisation: nil, justification: nil)
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let token = try await api.signIn(steward, fixture: f, password: Fixture.staffPassword)
                let otherToken = try await api.signIn(other, fixture: f, password: Fixture.staffPassword)
                let filed = try await api.call(
                    .post, "/v1/organisation-change-requests", token: token,
                    [
                        "name": "Steward Labs", "country": "NL", "city": "Delft",
                        "documents": [["fileName": "proof.png", "contentType": "image/png", "contentBase64": Data(Self.png).base64EncodedString()]],
                    ])
                #expect(filed.status == .created)
                let id = try #require(filed["id"] as? Int)
                for action in ["approve", "reject"] {
                    let own = try await api.call(.post, "/v1/organisation-change-requests/\(id)/\(action)", token: token, ["reason": "mine"])
                    #expect(own.status == .forbidden && own.code == "self-approval", "\(action)")
                }
                let approved = try await api.call(.post, "/v1/organisation-change-requests/\(id)/approve", token: otherToken)
                #expect(approved.status == .ok && approved["status"] as? String == "approved")
            }
        }
    }

    @Test("R17: a data steward rejects a change request with a reason; an empty reason is refused; bad input is a 4xx")
    func rejectChangeRequest() async throws {
        try await Fixture.with { f in
            let user = try await f.user("erin")
            _ = try await f.requests.submit(actor: user, role: .unaffiliatedUser, organisation: nil, justification: nil)
            let steward = try await f.staff(.dataSteward)
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let erin = try await api.signIn(user, fixture: f)
                let stewardToken = try await api.signIn(steward, fixture: f, password: "staff password 123")
                let document: [String: Any] = [
                    "fileName": "proof.png", "contentType": "image/png", "contentBase64": Data(Self.png).base64EncodedString(),
                ]
                let notPDF = try await api.call(
                    .post, "/v1/organisation-change-requests", token: erin,
                    [
                        "name": "X", "country": "NL", "city": "Utrecht",
                        "documents": [
                            ["fileName": "x.pdf", "contentType": "application/pdf", "contentBase64": Data(Self.png).base64EncodedString()]
                        ],
                    ])
                #expect(notPDF.status == .unprocessableContent && notPDF["field"] as? String == "documents[0].contentBase64")
                let badCountry = try await api.call(
                    .post, "/v1/organisation-change-requests", token: erin,
                    [
                        "name": "X", "country": "nl", "city": "Utrecht", "documents": [document],
                    ])
                #expect(badCountry.status == .unprocessableContent && badCountry["field"] as? String == "country")
                let noDocuments = try await api.call(
                    .post, "/v1/organisation-change-requests", token: erin,
                    [
                        "name": "X", "country": "NL", "city": "Utrecht", "documents": [] as [Any],
                    ])
                #expect(noDocuments.status == .unprocessableContent && noDocuments["field"] as? String == "documents")
                let filed = try await api.call(
                    .post, "/v1/organisation-change-requests", token: erin,
                    [
                        "name": "Erin Labs", "country": "NL", "city": "Utrecht", "documents": [document],
                    ])
                #expect(filed.status == .created)
                let id = try #require(filed["id"] as? Int)
                let blank = try await api.call(.post, "/v1/organisation-change-requests/\(id)/reject", token: stewardToken, ["reason": "  "])
                #expect(blank.status == .unprocessableContent && blank.code == "reason-required")
                let rejected = try await api.call(
                    .post, "/v1/organisation-change-requests/\(id)/reject", token: stewardToken, ["reason": "Already in OMS as ORG-100000001."])
                #expect(rejected.status == .ok && rejected["status"] as? String == "rejected")
                #expect(rejected["decisionReason"] as? String == "Already in OMS as ORG-100000001." && rejected["organisationId"] == nil)
                let missing = try await api.call(.post, "/v1/organisation-change-requests/999999999/approve", token: stewardToken)
                #expect(missing.status == .notFound)
                let badStatus = try await api.call(.get, "/v1/organisation-change-requests?status=bogus", token: erin)
                #expect(badStatus.status == .badRequest || badStatus.status == .unprocessableContent)
            }
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM organisations") == ["0"])
        }
    }

    // MARK: Members and tenant isolation (R13, R14)

    @Test("R13 through HTTP: a super user of A gets 404 for B's members, revocations, requests, approvals, rejections and audit events")
    func tenantIsolation() async throws {
        try await Fixture.with { f in
            let a = try await f.organisation("Alpha")
            let b = try await f.organisation("Beta")
            let superA = try await f.superUser(of: a)
            let superB = try await f.superUser(of: b)
            let applicant = try await f.user("applicant")
            let pendingB = try await f.requests.submit(actor: applicant, role: .industryUser, organisation: b, justification: nil).request
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let tokenA = try await api.signIn(superA, fixture: f)
                let tokenB = try await api.signIn(superB, fixture: f)
                let role = "spor-industry-super-user"

                let own = try await api.call(.get, "/v1/organisations/\(a.rawValue)/members", token: tokenA)
                #expect(own.status == .ok)
                let member = try #require(own.items.first)
                #expect(own.items.count == 1 && member["accountId"] as? String == superA.description)
                let roles = member["roles"] as? [[String: Any]] ?? []
                #expect(roles.map { $0["role"] as? String } == [role] && roles.first?["assignmentId"] is Int)

                let foreignMembers = try await api.call(.get, "/v1/organisations/\(b.rawValue)/members", token: tokenA)
                #expect(foreignMembers.status == .notFound && foreignMembers.code == "not-found")
                let unknown = try await api.call(.get, "/v1/organisations/ORG-999999999/members", token: tokenA)
                #expect(unknown.status == .notFound)
                let foreignRevoke = try await api.call(
                    .delete, "/v1/organisations/\(b.rawValue)/members/\(superB.rawValue)/roles/\(role)", token: tokenA, [:])
                #expect(foreignRevoke.status == .notFound)
                let viaOwnOrganisation = try await api.call(
                    .delete, "/v1/organisations/\(a.rawValue)/members/\(superB.rawValue)/roles/\(role)", token: tokenA, [:])
                #expect(viaOwnOrganisation.status == .notFound)
                #expect(try await api.call(.get, "/v1/organisations/\(b.rawValue)/access-requests", token: tokenA).status == .notFound)
                let approve = try await api.call(
                    .post, "/v1/organisations/\(b.rawValue)/access-requests/\(pendingB.id.rawValue)/approve", token: tokenA, [:])
                #expect(approve.status == .notFound)
                let reject = try await api.call(
                    .post, "/v1/organisations/\(b.rawValue)/access-requests/\(pendingB.id.rawValue)/reject", token: tokenA, ["reason": "no"])
                #expect(reject.status == .notFound)
                let throughA = try await api.call(
                    .post, "/v1/organisations/\(a.rawValue)/access-requests/\(pendingB.id.rawValue)/approve", token: tokenA, [:])
                #expect(throughA.status == .notFound)
                #expect(try await f.ownerQuery("SELECT status FROM access_requests WHERE id = \(pendingB.id.rawValue)") == ["pending"])
                #expect(try await f.ownerQuery("SELECT count(*)::text FROM role_assignments WHERE revoked_at IS NOT NULL") == ["0"])

                // Audit events: A's super user sees A's events only, and naming B is not found.
                let foreignAudit = try await api.call(.get, "/v1/audit-events?organisationId=\(b.rawValue)", token: tokenA)
                #expect(foreignAudit.status == .notFound)
                let audit = try await api.call(.get, "/v1/audit-events?limit=500", token: tokenA)
                #expect(audit.status == .ok)
                let organisations = Set(audit.items.compactMap { $0["organisationId"] as? String })
                #expect(organisations == [a.rawValue])
                let ownAudit = try await api.call(.get, "/v1/audit-events?organisationId=\(a.rawValue)", token: tokenA)
                let events = ownAudit.items
                #expect(!events.isEmpty && events.allSatisfy { $0["organisationId"] as? String == a.rawValue })
                let ids = events.compactMap { $0["id"] as? Int }
                #expect(ids == ids.sorted(by: >))  // newest first
                let granted = try #require(events.first { $0["action"] as? String == "role-assignment.granted" })
                #expect((granted["after"] as? [String: Any])?["role"] as? String == role)
                let bAudit = try await api.call(.get, "/v1/audit-events?organisationId=\(b.rawValue)", token: tokenB)
                #expect(bAudit.status == .ok && !bAudit.items.isEmpty)
                let byAccount = try await api.call(
                    .get, "/v1/audit-events?accountId=\(superA.description.uppercased())&limit=500", token: tokenA
                ).items
                #expect(!byAccount.isEmpty && byAccount.count < audit.items.count)
                #expect(
                    byAccount.allSatisfy {
                        $0["actorId"] as? String == superA.description || $0["subjectId"] as? String == superA.description
                            || ($0["after"] as? [String: Any])?["account"] as? String == superA.description
                    })
                let future = try await api.call(.get, "/v1/audit-events?from=2999-01-01T00:00:00Z", token: tokenA).items
                #expect(future.isEmpty)
                let until = try await api.call(.get, "/v1/audit-events?to=2999-01-01T00:00:00Z&limit=500", token: tokenA).items
                #expect(until.count == audit.items.count)
                let reversed = try await api.call(.get, "/v1/audit-events?from=2999-01-01T00:00:00Z&to=2000-01-01T00:00:00Z", token: tokenA)
                #expect(reversed.status == .unprocessableContent)
                #expect(try await api.call(.get, "/v1/audit-events?organisationId=ORG-1", token: tokenA).status == .unprocessableContent)
                #expect(try await api.call(.get, "/v1/audit-events?accountId=nope", token: tokenA).status == .unprocessableContent)
            }
        }
    }

    @Test(
        "R14 through HTTP: super users revoke members; the last super user is 409 last-super-user; the service desk may remove it (204), and the next request is a first one again (R8)"
    )
    func revocation() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation("Gamma")
            let desk = try await f.staff(.serviceDesk)
            let first = try await f.superUser(of: org, approvedBy: desk)
            let second = try await f.superUser(of: org, approvedBy: first)
            let worker = try await f.user("worker")
            let request = try await f.requests.submit(actor: worker, role: .industryUser, organisation: org, justification: nil).request
            _ = try await f.requests.decide(actor: first, request: request.id, channel: .organisation, action: .approve)
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let firstToken = try await api.signIn(first, fixture: f)
                let deskToken = try await api.signIn(desk, fixture: f, password: "staff password 123")
                let workerToken = try await api.signIn(worker, fixture: f)
                let members = "/v1/organisations/\(org.rawValue)/members"

                // Paging: limit 1, then the cursor; limit out of range is a validation problem.
                let page1 = try await api.call(.get, "\(members)?limit=1", token: firstToken)
                let cursor = try #require(page1["nextCursor"] as? String)
                let page2 = try await api.call(.get, "\(members)?limit=1&cursor=\(cursor)", token: firstToken)
                let page3 = try await api.call(.get, "\(members)?limit=1&cursor=\(try #require(page2["nextCursor"] as? String))", token: firstToken)
                #expect(page3["nextCursor"] == nil || page3["nextCursor"] is NSNull)
                let everyone = (page1.items + page2.items + page3.items).compactMap { $0["accountId"] as? String }
                #expect(Set(everyone) == [first.description, second.description, worker.description] && everyone.count == 3)
                let tooMany = try await api.call(.get, "\(members)?limit=501", token: firstToken)
                #expect(tooMany.status == .unprocessableContent && tooMany.code == "validation-failed")
                let badCursor = try await api.call(.get, "\(members)?cursor=zzz", token: firstToken)
                #expect(badCursor.status == .unprocessableContent)
                // A plain member is not a super user: 404 for the list and for revoking someone else.
                #expect(try await api.call(.get, members, token: workerToken).status == .notFound)
                #expect(
                    try await api.call(.delete, "\(members)/\(second.rawValue)/roles/spor-industry-super-user", token: workerToken, [:]).status
                        == .notFound)
                // Bad ids are 4xx problems.
                #expect(
                    try await api.call(.delete, "\(members)/not-a-uuid/roles/spor-industry-user", token: firstToken, [:]).status
                        == .unprocessableContent)
                let badRole = try await api.call(.delete, "\(members)/\(worker.rawValue)/roles/bogus", token: firstToken, [:])
                #expect(badRole.status.code >= 400 && badRole.status.code < 500)

                // A super user revokes a member (with a reason), then the other super user.
                let revoked = try await api.call(
                    .delete, "\(members)/\(worker.rawValue)/roles/spor-industry-user", token: firstToken, ["reason": "left the company"])
                #expect(revoked.status == .noContent)
                #expect(
                    try await f.ownerQuery(
                        "SELECT revoke_reason FROM role_assignments WHERE account_id = \(worker.pgUUID) AND revoked_at IS NOT NULL"
                    ) == ["left the company"])
                #expect(
                    try await api.call(.delete, "\(members)/\(worker.rawValue)/roles/spor-industry-user", token: firstToken, [:]).status == .notFound)
                #expect(
                    try await api.call(.delete, "\(members)/\(second.rawValue)/roles/spor-industry-super-user", token: firstToken, [:]).status
                        == .noContent)

                // The last super user: not by the organisation, not even by themselves (R14).
                let last = try await api.call(.delete, "\(members)/\(first.rawValue)/roles/spor-industry-super-user", token: firstToken, [:])
                #expect(last.status == .conflict && last.code == "last-super-user" && last["rule"] as? String == "R14")
                #expect(try await f.ownerQuery("SELECT spor_active_super_user_count(\(org.rawValue))::text") == ["1"])

                // The service desk may, and sees the members as staff.
                #expect(try await api.call(.get, members, token: deskToken).status == .ok)
                let byDesk = try await api.call(
                    .delete, "\(members)/\(first.rawValue)/roles/spor-industry-super-user", token: deskToken, ["reason": "left"])
                #expect(byDesk.status == .noContent)
                #expect(try await f.ownerQuery("SELECT spor_active_super_user_count(\(org.rawValue))::text") == ["0"])
                #expect(try await api.call(.get, members, token: deskToken).items.isEmpty)

                // R8: with no super user left, the next super-user request is a first one again.
                let again = try await api.call(
                    .post, "/v1/access-requests", token: workerToken, ["role": "spor-industry-super-user", "organisationId": org.rawValue])
                #expect(again.status == .created && again["approverKind"] as? String == "ema-service-desk")
            }
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM audit_events WHERE action = 'role-assignment.revoked'") == ["3"])
        }
    }

    // MARK: Service desk queue and letters (R10)

    @Test("R10 through HTTP: the service desk lists tickets (status, overdue) and downloads the letter as uploaded; others get 404")
    func ticketQueue() async throws {
        try await Fixture.with { f in
            let desk = try await f.staff(.serviceDesk)
            let steward = try await f.staff(.dataSteward)
            let early = try await f.organisation("Early")
            let late = try await f.organisation("Late")
            let earlyUser = try await f.user("early")
            let earlyRequest = try await f.requests.submit(actor: earlyUser, role: .superUser, organisation: early, justification: nil).request
            let overdue = try await f.openTicket(for: earlyRequest, by: earlyUser)
            // Two days old: due yesterday. (Tickets are immutable to the application; the owner rewinds the clock.)
            try await f.owner.withTransaction(logger: TestDatabase.logger) { connection in
                try await connection.query("ALTER TABLE service_desk_tickets DISABLE TRIGGER USER", logger: TestDatabase.logger)
                try await connection.query(
                    "UPDATE service_desk_tickets SET opened_at = opened_at - interval '2 days', due_at = due_at - interval '2 days' WHERE id = \(overdue.id)",
                    logger: TestDatabase.logger)
                try await connection.query("ALTER TABLE service_desk_tickets ENABLE TRIGGER USER", logger: TestDatabase.logger)
            }
            let lateUser = try await f.user("late")
            let lateRequest = try await f.requests.submit(actor: lateUser, role: .superUser, organisation: late, justification: nil).request
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let deskToken = try await api.signIn(desk, fixture: f, password: "staff password 123")
                let stewardToken = try await api.signIn(steward, fixture: f, password: "staff password 123")
                let lateToken = try await api.signIn(lateUser, fixture: f)
                let earlyToken = try await api.signIn(earlyUser, fixture: f)

                // The second ticket through HTTP, with a PNG letter.
                let opened = try await api.call(
                    .post, "/v1/service-desk/tickets", token: lateToken,
                    [
                        "subject": "SPOR Super user role access – request ID \(lateRequest.id)",
                        "signatory": [
                            "name": "Dr. Late", "jobTitle": "CEO", "email": "ceo@late.example", "organisationId": late.rawValue,
                            "hasManagerialAuthority": true,
                        ],
                        "letter": ["fileName": "letter scan.png", "contentType": "image/png", "contentBase64": Data(Self.png).base64EncodedString()],
                    ])
                #expect(opened.status == .created)
                let fresh = try #require(opened["id"] as? Int)

                let all = try await api.call(.get, "/v1/service-desk/tickets", token: deskToken)
                #expect(all.status == .ok && all.items.map { $0["id"] as? Int } == [fresh, Int(overdue.id)])
                let overdueOnly = try await api.call(.get, "/v1/service-desk/tickets?overdue=true", token: deskToken)
                #expect(overdueOnly.items.map { $0["id"] as? Int } == [Int(overdue.id)])
                let onTime = try await api.call(.get, "/v1/service-desk/tickets?overdue=false&status=open", token: deskToken)
                #expect(onTime.items.map { $0["id"] as? Int } == [fresh])
                #expect(try await api.call(.get, "/v1/service-desk/tickets?status=resolved", token: deskToken).items.isEmpty)
                let page = try await api.call(.get, "/v1/service-desk/tickets?limit=1", token: deskToken)
                #expect(page.items.count == 1 && page["nextCursor"] is String)

                // Not the service desk: 404, not 403 (the queue is not revealed).
                #expect(try await api.call(.get, "/v1/service-desk/tickets", token: lateToken).status == .notFound)
                #expect(try await api.call(.get, "/v1/service-desk/tickets", token: stewardToken).status == .notFound)

                // One ticket: the desk and its requester; another user: 404.
                #expect(try await api.call(.get, "/v1/service-desk/tickets/\(fresh)", token: lateToken)["status"] as? String == "open")
                #expect(try await api.call(.get, "/v1/service-desk/tickets/\(fresh)", token: deskToken).status == .ok)
                #expect(try await api.call(.get, "/v1/service-desk/tickets/\(fresh)", token: earlyToken).status == .notFound)

                // The letters: bytes and content type as uploaded, as downloads that are never sniffed (R10).
                for (id, bytes, type, name) in [
                    (Int(overdue.id), Fixture.pdf, "application/pdf", "affiliation.pdf"), (fresh, Self.png, "image/png", "letter scan.png"),
                ] {
                    let letter = try await api.send(.get, "/v1/service-desk/tickets/\(id)/letter", token: deskToken)
                    #expect(letter.status == .ok)
                    #expect(letter.contentType == type)
                    #expect(Array(buffer: letter.body) == bytes)
                    #expect(letter.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
                    let encoded = name.replacingOccurrences(of: " ", with: "%20")
                    #expect(letter.headers[.contentDisposition] == "attachment; filename=\"\(name)\"; filename*=UTF-8''\(encoded)")
                }
                #expect(try await api.call(.get, "/v1/service-desk/tickets/\(fresh)/letter", token: lateToken).status == .notFound)
                #expect(try await api.call(.get, "/v1/service-desk/tickets/999999/letter", token: deskToken).status == .notFound)
            }
        }
    }

    // MARK: Notification outbox (R16)

    @Test("R16: the outbox is listed for ema-admin only (others 404), newest first, filtered by recipient")
    func notifications() async throws {
        try await Fixture.with { f in
            let admin = try await f.staff(.admin)
            let desk = try await f.staff(.serviceDesk)
            let user = try await f.user("nora")
            let email = try #require(try await f.ownerQuery("SELECT email FROM accounts WHERE id = \(user.pgUUID)").first)
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let adminToken = try await api.signIn(admin, fixture: f, password: "staff password 123")
                let deskToken = try await api.signIn(desk, fixture: f, password: "staff password 123")
                let userToken = try await api.signIn(user, fixture: f)
                #expect(try await api.call(.get, "/v1/admin/notifications", token: userToken).status == .notFound)
                #expect(try await api.call(.get, "/v1/admin/notifications", token: deskToken).status == .notFound)
                #expect(try await api.call(.get, "/v1/admin/notifications").status == .unauthorized)

                let all = try await api.call(.get, "/v1/admin/notifications", token: adminToken)
                #expect(all.status == .ok)
                let ids = all.items.compactMap { $0["id"] as? Int }
                #expect(!ids.isEmpty && ids == ids.sorted(by: >))
                let hers = try await api.call(.get, "/v1/admin/notifications?recipient=\(email.uppercased())", token: adminToken)
                let rows = hers.items
                #expect(rows.count == 1 && rows.first?["template"] as? String == "verify-email" && rows.first?["recipient"] as? String == email)
                // The delivery state, and no body: verification e-mails carry a secret link.
                #expect(rows.first?["status"] as? String == "queued" && rows.first?["attempts"] as? Int == 0)
                #expect(rows.first?["body"] == nil && rows.first?["createdAt"] is String && rows.first?["nextAttemptAt"] is String)
                let byAccount = try await api.call(.get, "/v1/admin/notifications?recipient=\(user.rawValue)", token: adminToken)
                #expect(byAccount.items.map { $0["id"] as? Int } == rows.map { $0["id"] as? Int })
                #expect(try await api.call(.get, "/v1/admin/notifications?recipient=nobody", token: adminToken).status == .unprocessableContent)
                #expect(try await api.call(.get, "/v1/admin/notifications?limit=0", token: adminToken).status == .unprocessableContent)
            }
        }
    }
}
