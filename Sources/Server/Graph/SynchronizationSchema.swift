import Sync
import TesseraCore

/// The `Azure2Azure` job's `synchronizationSchema`: one rule with the users' and the groups' object mappings and their
/// attribute mappings. Tessera's mappings are fixed (the template's); a `PUT` may change the users' scoping filter and
/// the `userType` mapping's constant (`Member` or `Guest`), and is refused when it changes anything else.
enum SynchronizationSchema {
    static let ruleID = "6c409270-f78a-4bc6-af23-7cf3ab6482fe"
    static let userMappings: [(target: String, source: String)] = [
        ("accountEnabled", "accountEnabled"), ("displayName", "displayName"), ("givenName", "givenName"), ("surname", "surname"),
        ("mail", "mail"), ("department", "department"), ("jobTitle", "jobTitle"), ("mailNickname", "mailNickname"),
        ("alternativeSecurityIds", "alternativeSecurityIds"),
    ]
    static let groupMappings: [(target: String, source: String)] = [
        ("displayName", "displayName"), ("description", "description"), ("mailNickname", "mailNickname"), ("members", "members"),
    ]

    static func attribute(_ target: String, _ source: String, matching: Int = 0) -> JSONValue {
        ["defaultValue": nil, "exportMissingReferences": false, "flowBehavior": "FlowWhenChanged", "flowType": "Always",
         "matchingPriority": .int(Int64(matching)), "targetAttributeName": .string(target),
         "source": ["expression": .string("[\(source)]"), "name": .string(source), "parameters": [], "type": "Attribute"]]
    }

    static func render(_ job: CrossTenantSyncJob) -> [String: JSONValue] {
        let scope: JSONValue = job.scopingFilter.isEmpty ? .null : [
            "categoryFilterGroups": [], "inputFilterGroups": [],
            "groups": .array(job.scopingFilter.enumerated().map { index, clauses in
                ["name": .string("Scoping filter \(index + 1)"), "clauses": .array(clauses.map { clause in
                    ["operatorName": .string(clause.operatorName), "sourceOperandName": .string(clause.attribute),
                     "targetOperand": ["values": .array(clause.values.map { .string($0) })]]
                })]
            }),
        ]
        var users = userMappings.map { attribute($0.target, $0.source, matching: $0.target == "alternativeSecurityIds" ? 1 : 0) }
        users.append(["defaultValue": nil, "exportMissingReferences": false, "flowBehavior": "FlowWhenChanged", "flowType": "Always",
                      "matchingPriority": 0, "targetAttributeName": "userType",
                      "source": ["expression": .string("\"\(job.userType)\""), "name": .string(job.userType), "parameters": [], "type": "Constant"]])
        let rule: JSONValue = [
            "id": .string(ruleID), "name": "USER_INBOUND_USER", "editable": true, "priority": 1, "containerFilter": nil, "groupFilter": nil,
            "sourceDirectoryName": "Azure Active Directory", "targetDirectoryName": "Azure Active Directory (target tenant)",
            "metadata": [["key": "supportsProvisionOnDemand", "value": "true"]],
            "objectMappings": [
                ["enabled": true, "flowTypes": "Add, Update, Delete", "metadata": [], "name": "Provision Azure Active Directory Users",
                 "sourceObjectName": "User", "targetObjectName": "User", "scope": scope, "attributeMappings": .array(users)],
                ["enabled": true, "flowTypes": "Add, Update, Delete", "metadata": [], "name": "Provision Azure Active Directory Groups",
                 "sourceObjectName": "Group", "targetObjectName": "Group", "scope": nil,
                 "attributeMappings": .array(groupMappings.map { attribute($0.target, $0.source) })],
            ],
        ]
        return ["id": .string(job.id), "version": "v1.2", "directories": [], "synchronizationRules": [rule]]
    }

    /// The users' scoping filter and `userType` constant of a schema given to `PUT`.
    static func parse(_ body: [String: JSONValue]) throws(DirectoryError) -> (filter: [[ScopingClause]], userType: String) {
        guard let rules = body["synchronizationRules"]?.arrayValue, !rules.isEmpty else {
            throw DirectoryError.badRequest("Property 'synchronizationRules' is required.")
        }
        var filter: [[ScopingClause]] = [], userType = "Member"
        for rule in rules {
            for mapping in rule["objectMappings"]?.arrayValue ?? [] {
                let source = mapping["sourceObjectName"]?.stringValue ?? ""
                guard source == "User" || source == "Group" else {
                    throw DirectoryError.badRequest("Object mapping '\(source)' is not supported: Tessera synchronizes users and groups.")
                }
                let allowed = Dictionary(uniqueKeysWithValues: (source == "User" ? userMappings : groupMappings).map { ($0.target, $0.source) })
                for attribute in mapping["attributeMappings"]?.arrayValue ?? [] {
                    let target = attribute["targetAttributeName"]?.stringValue ?? ""
                    if source == "User", target == "userType" {
                        guard attribute["source"]?["type"] == "Constant", let name = attribute["source"]?["name"]?.stringValue,
                              name == "Member" || name == "Guest" else {
                            throw DirectoryError.badRequest("The userType mapping must be the constant Member or Guest.")
                        }
                        userType = name
                        continue
                    }
                    guard let expected = allowed[target], attribute["source"]?["name"]?.stringValue == expected else {
                        throw DirectoryError.badRequest("The attribute mapping to '\(target)' cannot be changed: Tessera's mappings are the template's, except userType's constant and the scoping filter.")
                    }
                }
                guard source == "User", let scope = mapping["scope"], scope != .null else { continue }
                for group in scope["groups"]?.arrayValue ?? [] {
                    var clauses: [ScopingClause] = []
                    for clause in group["clauses"]?.arrayValue ?? [] {
                        guard let attribute = clause["sourceOperandName"]?.stringValue, let op = clause["operatorName"]?.stringValue else {
                            throw DirectoryError.badRequest("Each scoping filter clause needs sourceOperandName and operatorName.")
                        }
                        guard ScopingClause.operators.contains(op) else {
                            throw DirectoryError.badRequest("The scoping filter operator '\(op)' is not supported; Tessera evaluates \(ScopingClause.operators.sorted().joined(separator: ", ")).")
                        }
                        clauses.append(ScopingClause(attribute: attribute, operatorName: op,
                                                     values: clause["targetOperand"]?["values"]?.arrayValue?.compactMap(\.stringValue) ?? []))
                    }
                    if !clauses.isEmpty { filter.append(clauses) }
                }
            }
        }
        return (filter, userType)
    }
}
