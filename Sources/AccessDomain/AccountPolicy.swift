import Foundation

/// An answer to one security question, as the account holder gave it (R3).
public struct SecurityAnswer: Sendable, Equatable {
    public var question: String
    public var answer: String

    public init(question: String, answer: String) {
        self.question = question
        self.answer = answer
    }
}

extension ApprovalPolicy {
    /// R3: three different questions (compared without case and surrounding space), none empty, each question and
    /// answer at most 300 characters. Answers are compared without case, so they are hashed in lower case.
    public static func validate(securityAnswers answers: [SecurityAnswer]) -> Result<[SecurityAnswer], Refusal> {
        guard answers.allSatisfy({ $0.question.count <= 300 && $0.answer.count <= 300 }) else {
            return .failure(Refusal(.validationFailed, .r3, "Questions and answers have at most 300 characters.", field: "answers"))
        }
        let questions = Set(answers.map { $0.question.trimmingCharacters(in: .whitespacesAndNewlines).lowercased() })
        guard answers.count == 3, questions.count == 3, !questions.contains("") else {
            return .failure(Refusal(.validationFailed, .r3, "Answer three different security questions.", field: "answers"))
        }
        guard answers.allSatisfy({ !$0.answer.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }) else {
            return .failure(Refusal(.validationFailed, .r3, "Security answers cannot be empty.", field: "answers"))
        }
        return .success(answers.map { SecurityAnswer(question: $0.question, answer: $0.answer.lowercased()) })
    }
}
