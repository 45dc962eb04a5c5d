import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

extension ConcurrencyTests {
    // MARK: R7

    @Test("R7: concurrent duplicate submissions store one pending request", .timeLimit(.minutes(2)))
    func concurrentDuplicateSubmissions() async throws {
        try await Fixture.with { f in
            let count = 20
            let org = try await f.organisation()
            _ = try await f.superUser(of: org)
            let user = try await f.user("duplicate")
            try await Self.warmUp(f, connections: count)

            let results = try await withThrowingTaskGroup(of: Result<Submission, any Error>.self) { group in
                for _ in 0..<count {
                    group.addTask {
                        do {
                            return .success(
                                try await f.requests.submit(
                                    actor: user, role: .industryUser, organisation: org, justification: "same request"))
                        } catch {
                            return .failure(error)
                        }
                    }
                }
                var all: [Result<Submission, any Error>] = []
                for try await result in group { all.append(result) }
                return all
            }

            let successes = results.compactMap { try? $0.get() }
            #expect(successes.count == 1)
            for case .failure(let error) in results {
                let refusal = error as? Refusal
                #expect(refusal?.code == .duplicateRequest && refusal?.rule == .r7, "\(error)")
            }
            #expect(
                try await f.ownerQuery(
                    """
                    SELECT count(*)::text FROM access_requests WHERE requester_id = \(user.pgUUID)
                    AND organisation_id = \(org.rawValue) AND role = 'spor-industry-user' AND status = 'pending'
                    """) == ["1"])
            #expect(
                try await f.ownerQuery(
                    "SELECT count(*)::text FROM audit_events WHERE action = 'access-request.submitted' AND actor_id = \(user.pgUUID)"
                )
                    == ["1"])
        }
    }
}
