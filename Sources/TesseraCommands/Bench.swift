import ArgumentParser

/// `tessera bench`: measurements written to BENCHMARKS.md.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run benchmarks.", subcommands: [TokenBench.self, LoadBench.self, WebAuthnBench.self, SignInBench.self, SignInBrowsers.self, AdminBench.self, BackupBench.self, ConditionalAccessBench.self, KerberosBench.self, DeviceRegistrationBench.self, PromptBench.self, TenantsBench.self, CrossTenantSyncBench.self])
}
