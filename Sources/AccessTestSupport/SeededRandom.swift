import PropertyBased

/// The one seeded random generator of the tests: PropertyBased's `Xoshiro` (xoshiro256**), drawn through its `Gen`
/// generators, so a seed always means the same sequence.
///
/// A seed is PropertyBased's own seed format (the base64 of the generator's state, what its `.fixedSeed(_:)` trait
/// takes): short enough to print with every run and to paste into an environment variable to replay one.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    /// The seed this generator started from.
    public let seed: String
    private var generator: Xoshiro

    /// A generator replaying `seed`; nil when `seed` is not a PropertyBased seed.
    public init?(seed: String) {
        guard let generator = Xoshiro(seed: seed) else { return nil }
        self.seed = seed
        self.generator = generator
    }

    /// A generator with a fresh seed from the system's random source.
    public init() {
        generator = Xoshiro()
        seed = generator.currentSeed
    }

    public mutating func next() -> UInt64 { generator.next() }

    /// Uniform in `0..<bound` (0 when `bound` is 0 or less).
    public mutating func int(_ bound: Int) -> Int { Gen.int(in: 0...max(bound - 1, 0)).run(using: &generator) }

    /// True with `percent` % probability.
    public mutating func chance(_ percent: Int) -> Bool { int(100) < percent }

    /// One of `values` (not empty), uniformly.
    public mutating func pick<T>(_ values: [T]) -> T { values[int(values.count)] }
}
