public import TesseraCore

/// What a tenant's administrators decided about each discovered app: sanctioned, unsanctioned or monitored (Defender
/// for Cloud Apps' three tags). One object per tenant; a later session's filtering policies read it so that
/// "block unsanctioned apps" is one switch.
public enum AppSanctions {
    public enum State: String, Sendable, CaseIterable { case none, sanctioned, unsanctioned, monitored }

    static let kind = ObjectKind(rawValue: "generativeAIAppSettings")

    /// Ids are kept lowercase by the store.
    static func id(_ tenant: String) -> String { "\(tenant.lowercased())-generative-ai-app-settings" }

    /// The state of every app an administrator has tagged.
    public static func load(tenant: String, store: any DirectoryStore) async throws -> [String: State] {
        let id = id(tenant)
        guard let object = try await store.read({ tx in try await tx.object(tenant: tenant, id: id) }) else { return [:] }
        return (object.body["sanctions"]?.objectValue ?? [:]).compactMapValues { $0.stringValue.flatMap(State.init(rawValue:)) }
    }

    /// Tags one app (`none` removes the tag).
    public static func set(_ state: State, app: String, tenant: String, store: any DirectoryStore) async throws {
        let id = id(tenant)
        try await store.write { tx in
            let current = try await tx.object(tenant: tenant, id: id)
            var sanctions = current?.body["sanctions"]?.objectValue ?? [:]
            sanctions[app] = state == .none ? nil : .string(state.rawValue)
            if var object = current {
                object.body["sanctions"] = .object(sanctions)
                let version = object.version
                object.version += 1
                try await tx.update(object, expectedVersion: version)
            } else {
                try await tx.insert(StoredObject(tenant: tenant, id: id, kind: kind, body: ["sanctions": .object(sanctions)]))
            }
        }
    }
}
