import Audit
import Foundation
import GridContract
import RadGridCore
import RedisClient
import StudyStore
import Testing
import TestSupport

/// Each role's Redis user, created from `RedisAccessPolicy` on a real redis-server, signed in
/// to and tried: what its work needs succeeds, and the attacks of issue #17 are refused.
@Suite(.serialized) struct RedisRolesTests {
    let prefix = KeyPrefix.default
    var keys: GridKeys { GridKeys(prefix: prefix) }

    /// A server of its own (users are server-wide), one user per role, and a client per role.
    func withRoles(_ body: (RedisClient, [GridRole: RedisClient]) async throws -> Void) async throws {
        let server = try await RedisTestServer.start()
        defer { server.stop() }
        let admin = try RedisClient(url: server.url)
        defer { admin.shutdown() }
        let policy = RedisAccessPolicy(prefix: prefix)
        var clients: [GridRole: RedisClient] = [:]
        for role in GridRole.allCases {
            let password = "pw-\(role.rawValue)-\(UInt32.random(in: 0...UInt32.max))"
            _ = try await admin.send((["ACL", "SETUSER", role.user] + policy.rules(for: role, password: password)).map { RedisArgument($0) }).throwingServerError()
            clients[role] = try RedisClient(url: "redis://\(role.user):\(password)@127.0.0.1:\(server.port)")
        }
        defer { for client in clients.values { client.shutdown() } }
        try await body(admin, clients)
    }

    func allowed(_ client: RedisClient, _ arguments: [String]) async -> Bool {
        do {
            let reply = try await client.send(arguments.map { RedisArgument($0) })
            if let message = reply.errorMessage { return !message.hasPrefix("NOPERM") }
            return true
        } catch {
            return !"\(error)".contains("NOPERM")
        }
    }

    func header(_ study: String, _ sop: String) throws -> InstanceHeader {
        InstanceHeader(study: try StudyUID(study), series: try SeriesUID(study + ".1"), sop: try SOPInstanceUID(sop), modality: "CT", bodyPart: "HEAD")
    }

    @Test func gatewayStoresAStudyButCannotReadBlobsRosterOrAccounts() async throws {
        try await withRoles { admin, roles in
            let gateway = roles[.gateway]!
            // The real intake path (a script writing record, index, blob and audit entries) as the gateway user.
            let store = StudyStore(client: gateway, prefix: prefix)
            let outcome = try await store.storeInstance(site: try SiteID("H001"), header: try header("1.2.840.7", "1.2.840.7.1.1"), priority: .routine,
                                                        compressed: [1, 2, 3, 4], rawSize: 10, sha256: "ab")
            #expect(outcome == .stored)
            let blob = keys.study(try StudyUID("1.2.840.7")).blob(try SOPInstanceUID("1.2.840.7.1.1"))
            #expect(try await admin.send("GET", RedisArgument(blob)).bytes == [1, 2, 3, 4])
            // Reading any blob back: directly, or through a script of its own.
            #expect(await allowed(gateway, ["GET", blob]) == false)
            #expect(await allowed(gateway, ["GETRANGE", blob, "0", "-1"]) == false)
            #expect(await allowed(gateway, ["EVAL", "return redis.call('GET', KEYS[1])", "1", blob]) == false)
            #expect(await allowed(gateway, ["DUMP", blob]) == false)
            // The roster, accounts and sessions, the queue.
            #expect(await allowed(gateway, ["HSET", prefix.value + "route:{rt}:ex:cap", "E1", "99"]) == false)
            #expect(await allowed(gateway, ["HGETALL", prefix.value + "route:{rt}:ex:cred"]) == false)
            #expect(await allowed(gateway, ["HGETALL", keys.account("e1")]) == false)
            #expect(await allowed(gateway, ["KEYS", "*"]) == false)
            #expect(await allowed(gateway, ["XADD", prefix.value + "{q:tasks}:lane:stat", "*", "k", "x"]) == false)
            // Its own business: the record of the study it stores.
            #expect(await allowed(gateway, ["HGET", keys.study(try StudyUID("1.2.840.7")).record, "state"]))
        }
    }

    @Test func onlyTheAuditorDeletesAuditEntries() async throws {
        try await withRoles { admin, roles in
            // Chains written through the real append path by the roles that own them.
            let study = AuditTrail(client: roles[.gateway]!, prefix: prefix, chain: "s:1.2.3")
            try await study.append(actor: AuditActor(.site, "H001"), action: "study.received", study: "1.2.3")
            let adminChain = AuditTrail(client: roles[.admin]!, prefix: prefix, chain: "admin")
            try await adminChain.append(actor: AuditActor(.admin, "ops"), action: "sites.token.issued", details: "site=H001")
            let targets = [study.logKey, study.headKey, adminChain.logKey, adminChain.headKey]
            for role in GridRole.allCases where role != .auditor {
                let client = roles[role]!
                for key in targets {
                    for attack in [["DEL", key], ["UNLINK", key], ["EXPIRE", key, "1"], ["RENAME", key, key + ":x"], ["RESTORE", key, "0", "x", "REPLACE"]] {
                        #expect(await allowed(client, attack) == false, "\(role) may \(attack[0]) \(key)")
                    }
                }
                for log in [study.logKey, adminChain.logKey] {
                    #expect(await allowed(client, ["XTRIM", log, "MAXLEN", "0"]) == false, "\(role) may XTRIM")
                    #expect(await allowed(client, ["XDEL", log, "0-1"]) == false, "\(role) may XDEL")
                    #expect(await allowed(client, ["EVAL", "return redis.call('DEL', KEYS[1])", "1", log]) == false, "\(role) may DEL in a script")
                }
                #expect(await allowed(client, ["FLUSHALL"]) == false)
                #expect(await allowed(client, ["CONFIG", "SET", "appendonly", "no"]) == false)
                #expect(await allowed(client, ["ACL", "SETUSER", "evil", "on", ">x", "~*", "+@all"]) == false)
            }
            #expect(try await admin.send("XLEN", RedisArgument(study.logKey)).int == 1)
            #expect(try await AuditTrail.verify(client: admin, prefix: prefix).isIntact)
            // Every role but the monitor appends to chains; everyone may read them.
            #expect(await allowed(roles[.monitor]!, ["XRANGE", study.logKey, "-", "+"]))
            #expect(await allowed(roles[.monitor]!, ["XADD", study.logKey, "*", "a", "b"]) == false)
            // The auditor may trim (archives).
            #expect(await allowed(roles[.auditor]!, ["XTRIM", adminChain.logKey, "MAXLEN", "5"]))
            #expect(await allowed(roles[.auditor]!, ["GET", keys.study(try StudyUID("1.2.3")).blob(try SOPInstanceUID("1.2.3.4"))]) == false)
        }
    }

    @Test func eachRoleReachesItsOwnKeysOnly() async throws {
        try await withRoles { admin, roles in
            let uid = try StudyUID("1.2.840.9")
            let study = keys.study(uid)
            let blob = study.blob(try SOPInstanceUID("1.2.840.9.1"))
            _ = try await admin.send("SET", RedisArgument(blob), "pixels")
            // Workers and the portal decode and show images; the coordinator deletes them.
            #expect(await allowed(roles[.worker]!, ["GET", blob]))
            #expect(await allowed(roles[.portal]!, ["GET", blob]))
            #expect(await allowed(roles[.coordinator]!, ["DEL", blob]))
            for role in [GridRole.router, .monitor, .auditor, .coordinator] {
                #expect(await allowed(roles[role]!, ["GET", blob]) == false, "\(role) reads a blob")
            }
            // Site tokens: issued by the admin, read by intake, invisible to workers and the router.
            #expect(await allowed(roles[.admin]!, ["HSET", keys.siteTokens, "ab", "H001"]))
            #expect(await allowed(roles[.gateway]!, ["HGET", keys.siteTokens, "ab"]))
            #expect(await allowed(roles[.gateway]!, ["HSET", keys.siteTokens, "cd", "H002"]) == false)
            for role in [GridRole.worker, .router, .monitor, .coordinator] {
                #expect(await allowed(roles[role]!, ["HGETALL", keys.siteTokens]) == false, "\(role) reads tokens")
            }
            // Accounts and sessions: the portal's and the admin's only.
            for role in [GridRole.gateway, .worker, .router, .coordinator, .monitor, .auditor] {
                #expect(await allowed(roles[role]!, ["HGETALL", keys.account("e1")]) == false, "\(role) reads accounts")
                #expect(await allowed(roles[role]!, ["HGETALL", keys.session(tokenHash: "ff")]) == false, "\(role) reads sessions")
            }
            #expect(await allowed(roles[.portal]!, ["HSET", keys.session(tokenHash: "ff"), "user", "e1"]))
            // The monitor reads the queue, the studies' records and indexes, and writes nothing.
            #expect(await allowed(roles[.monitor]!, ["XLEN", prefix.value + "{q:tasks}:lane:stat"]))
            #expect(await allowed(roles[.monitor]!, ["HGETALL", study.record]))
            #expect(await allowed(roles[.monitor]!, ["ZCARD", keys.allStudies]))
            #expect(await allowed(roles[.monitor]!, ["GET", study.report]) == false)
            #expect(await allowed(roles[.monitor]!, ["HSET", study.record, "state", "reported"]) == false)
            #expect(await allowed(roles[.monitor]!, ["DEL", keys.allStudies]) == false)
            // Workers process; they do not route or configure.
            #expect(await allowed(roles[.worker]!, ["HSET", prefix.value + "route:{rt}:ex:cap", "E1", "9"]) == false)
            #expect(await allowed(roles[.worker]!, ["HSET", keys.sitePolicies, "*", "{}"]) == false)
            #expect(await allowed(roles[.router]!, ["HSET", prefix.value + "route:{rt}:ex:cap", "E1", "9"]))
        }
    }

    @Test func theShippedACLTemplateIsThePolicy() throws {
        let path = Corpus.packageRoot.appendingPathComponent("Ops/redis/radgrid-users.acl.template").path
        let shipped = try String(contentsOfFile: path, encoding: .utf8)
        #expect(shipped == RedisAccessPolicy().aclFileTemplate(), "regenerate with: radgridctl acl template > Ops/redis/radgrid-users.acl.template")
    }
}
