import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

/// Tenant governance's policy templates (`/directory/tenantGovernance/governancePolicyTemplates`), as Microsoft documents them.
@Suite("Tenant governance: policy templates")
struct TenantGovernancePolicyTemplateTests {
    static let path = "directory/tenantGovernance/governancePolicyTemplates"

    static func call(_ h: Harness, _ method: String, _ path: String, _ json: JSONValue? = nil, as caller: Caller,
                     version: String = "v1.0") async throws -> APIResponse {
        do {
            return try await GraphAPI(app: h.app).handle(APIRequest(method: method, path: "/\(version)/" + path, query: [],
                                                                    headers: ["content-type": "application/json"],
                                                                    body: json?.serializedBytes ?? [], baseURL: Harness.base), as: caller)
        } catch let error as DirectoryError {
            return .error(error)
        }
    }

    /// A role-assignable security group of the tenant, made with the automation app.
    static func adminsGroup(_ h: Harness, assignable: Bool = true) async throws -> String {
        let created = await h.graph("POST", "groups", token: try await h.accessToken(), json: [
            "displayName": "Contoso tenant admins", "mailEnabled": false, "mailNickname": "tenantadmins", "securityEnabled": true,
            "isAssignableToRole": .bool(assignable)])
        return try #require(created.json["id"]?.stringValue, "\(created.text)")
    }

    static func template(group: String) -> JSONValue {
        ["displayName": "Manage users", "description": "Grants User Administrator in governed tenants",
         "multiTenantApplicationsToProvision": [],
         "delegatedAdministrationRoleAssignments": [
            ["roleTemplates": [["id": .string(BuiltInRoles.userAdministrator), "name": "User Administrator"]], "group": ["id": .string(group)]]]]
    }

    @Test("a template is created (201, version 1.0, the group's name filled in), read, listed after the default, updated (version 2.0) and deleted")
    func lifecycle() async throws {
        try await Harness.run { h in
            let admin = try await h.caller(named: "govadmin", role: BuiltInRoles.globalAdministrator)
            let group = try await Self.adminsGroup(h)
            let created = try await Self.call(h, "POST", Self.path, Self.template(group: group), as: admin, version: "beta")
            #expect(created.status == 201, "\(created.text)")
            #expect(created.json["@odata.type"] == "#microsoft.graph.tenantGovernanceServices.governancePolicyTemplate")
            #expect(created.json["version"] == "1.0" && created.json["governedTenantCanTerminate"] == false)
            let assignment = created.json["delegatedAdministrationRoleAssignments"]?.arrayValue?.first
            #expect(assignment?["groupDisplayName"] == "Contoso tenant admins" && assignment?["roleTemplates"]?.arrayValue?.first?["name"] == "User Administrator")
            let id = try #require(created.json["id"]?.stringValue)

            let list = try await Self.call(h, "GET", Self.path, as: admin)
            #expect(list.json["value"]?.arrayValue?.map { $0["id"] } == ["default", .string(id)], "\(list.text)")
            #expect(try await Self.call(h, "GET", "\(Self.path)/default", as: admin).json["@odata.type"] == "#microsoft.graph.tenantGovernancePolicyTemplate")

            #expect(try await Self.call(h, "PATCH", "\(Self.path)/\(id)", ["displayName": "Manage users and groups"], as: admin).status == 204)
            let read = try await Self.call(h, "GET", "\(Self.path)/\(id)", as: admin)
            #expect(read.json["displayName"] == "Manage users and groups" && read.json["version"] == "2.0", "\(read.text)")

            #expect(try await Self.call(h, "DELETE", "\(Self.path)/\(id)", as: admin).status == 204)
            #expect(try await Self.call(h, "GET", "\(Self.path)/\(id)", as: admin).status == 404)
        }
    }

    @Test("the default template can be changed but not deleted")
    func defaultTemplate() async throws {
        try await Harness.run { h in
            let admin = try await h.caller(named: "govadmin", role: BuiltInRoles.globalAdministrator)
            let group = try await Self.adminsGroup(h)
            let patched = try await Self.call(h, "PATCH", "\(Self.path)/default", [
                "delegatedAdministrationRoleAssignments": Self.template(group: group)["delegatedAdministrationRoleAssignments"] ?? []], as: admin)
            #expect(patched.status == 204, "\(patched.text)")
            let read = try await Self.call(h, "GET", "\(Self.path)/default", as: admin)
            #expect(read.json["version"] == "2.0" && read.json["delegatedAdministrationRoleAssignments"]?.arrayValue?.count == 1)
            let deleted = try await Self.call(h, "DELETE", "\(Self.path)/default", as: admin)
            #expect(deleted.status == 400 && deleted.text.contains("cannot be deleted"))
        }
    }

    struct BadTemplate: Sendable, CustomTestStringConvertible {
        let name: String
        let change: @Sendable (String, inout [String: JSONValue]) -> Void
        let message: String
        var testDescription: String { name }
    }

    static let badTemplates: [BadTemplate] = [
        BadTemplate(name: "no display name", change: { _, body in body["displayName"] = nil }, message: "'displayName' is required"),
        BadTemplate(name: "a group of another tenant or none", change: { _, body in
            body["delegatedAdministrationRoleAssignments"] = [["roleTemplates": [["id": .string(BuiltInRoles.userAdministrator)]],
                                                               "group": ["id": "00000000-0000-0000-0000-0000000000aa"]]]
        }, message: "no group"),
        BadTemplate(name: "a role that is not a built-in template", change: { group, body in
            body["delegatedAdministrationRoleAssignments"] = [["roleTemplates": [["id": "11111111-2222-3333-4444-555555555555"]],
                                                               "group": ["id": .string(group)]]]
        }, message: "is not a built-in role template"),
        BadTemplate(name: "applications to provision", change: { _, body in
            body["multiTenantApplicationsToProvision"] = [["appId": "66667777-aaaa-8888-bbbb-9999cccc0000"]]
        }, message: "does not provision multitenant applications"),
        BadTemplate(name: "a read-only property", change: { _, body in body["version"] = "9.0" }, message: "read-only"),
    ]

    @Test("bad input is Graph's 400 and writes nothing", arguments: badTemplates)
    func refusesBadInput(_ c: BadTemplate) async throws {
        try await Harness.run { h in
            let admin = try await h.caller(named: "govadmin", role: BuiltInRoles.globalAdministrator)
            let group = try await Self.adminsGroup(h)
            guard case .object(var body) = Self.template(group: group) else { return }
            c.change(group, &body)
            let response = try await Self.call(h, "POST", Self.path, .object(body), as: admin)
            #expect(response.status == 400 && response.text.contains(c.message), "\(response.text)")
            #expect(try await Self.call(h, "GET", Self.path, as: admin).json["value"]?.arrayValue?.count == 1)
        }
    }

    @Test("a group that cannot hold roles is refused: the governed tenant's roles go to role-assignable groups only")
    func needsARoleAssignableGroup() async throws {
        try await Harness.run { h in
            let admin = try await h.caller(named: "govadmin", role: BuiltInRoles.globalAdministrator)
            let group = try await Self.adminsGroup(h, assignable: false)
            let response = try await Self.call(h, "POST", Self.path, Self.template(group: group), as: admin)
            #expect(response.status == 400 && response.text.contains("role-assignable"), "\(response.text)")
        }
    }

    @Test("a Global Reader reads templates and cannot write them; a user without a role, and an app, cannot read them")
    func permissions() async throws {
        try await Harness.run { h in
            let reader = try await h.caller(named: "reader", role: BuiltInRoles.globalReader)
            #expect(try await Self.call(h, "GET", Self.path, as: reader).status == 200)
            let group = try await Self.adminsGroup(h)
            #expect(try await Self.call(h, "POST", Self.path, Self.template(group: group), as: reader).status == 403)
            let plain = try await h.caller(named: "plain", role: nil)
            #expect(try await Self.call(h, "GET", Self.path, as: plain).status == 403)
            // Microsoft supports no application permission for these APIs.
            #expect(await h.graph("GET", Self.path, token: try await h.accessToken()).status == 403)
        }
    }
}
