import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

/// The failover router's pools on a real primary and standby (`scripts/pg-pair-up`): a router that moves to another
/// server ends the pool it leaves (its connections closed, as the old server itself reports) and its tasks, and a
/// closed router leaves nothing running, so one process can use routers one after another.
@Suite("PostgreSQL router pools", .serialized, .enabled(if: PostgresPair.available))
struct PostgresRouterTests {
    /// Connections to `port`'s database other than the asking one, as that server counts them.
    static func clients(_ pair: PostgresPair, port: Int) async throws -> Int {
        let count = try await pair.psql(port: port, """
            SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = current_database() AND pid <> pg_backend_pid()
            """)
        return try #require(Int(count), "\(count)")
    }

    /// Polls `condition` every 100 ms until it holds or `limit` passes; whether it held.
    static func eventually(within limit: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws -> Bool {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }

    /// The port of the server `router` lends connections to now.
    static func serverPort(_ router: PostgresRouter) async throws -> Int {
        let rows = try await router.withConnection { connection in
            try await PostgresSession(connection: connection, logger: router.logger).execute("SELECT inet_server_port()", [])
        }
        guard case .int(let port) = rows.first?.first else { return 0 }
        return Int(port)
    }

    @Test("a router that moves to a promoted standby ends the old server's pool: every connection it had there is closed while that server still runs, and closing the router ends the new one")
    func oldPoolIsShutDown() async throws {
        let pair = try await PostgresPair.start(sync: false)
        do {
            let router = PostgresRouter(url: try PostgresURL(pair.url), maxConnections: 4)
            #expect(try await Self.serverPort(router) == pair.primaryPort)
            // Four requests at once make the pool open four connections (and the watch one more).
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        _ = try await router.withConnection { try await PostgresSession(connection: $0, logger: router.logger).execute("SELECT pg_sleep(0.3)", []) }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await Self.clients(pair, port: pair.primaryPort) >= 4)
            #expect(router.poolsRunning == 1)

            // The primary stays up but stops taking writes (as a demoted primary would), and the standby is promoted:
            // the router must move, and the pool it leaves must end though its server would still serve it.
            _ = try await pair.psql(port: pair.primaryPort, "ALTER SYSTEM SET default_transaction_read_only = on")
            _ = try await pair.psql(port: pair.primaryPort, "SELECT pg_reload_conf()")
            try await pair.promote()
            #expect(try await Self.eventually { (try? await Self.serverPort(router)) == pair.standbyPort }, "the router did not move")
            let closed = try await Self.eventually { try await Self.clients(pair, port: pair.primaryPort) == 0 }
            let left = try await Self.clients(pair, port: pair.primaryPort)
            #expect(closed, "the old server still has \(left) of the router's connections")
            #expect(try await Self.eventually { router.poolsRunning == 1 }, "pools running: \(router.poolsRunning)")
            #expect(try await Self.clients(pair, port: pair.standbyPort) >= 1)

            await router.close()
            #expect(router.poolsRunning == 0)
            let gone = try await Self.eventually { try await Self.clients(pair, port: pair.standbyPort) == 0 }
            let remaining = try await Self.clients(pair, port: pair.standbyPort)
            #expect(gone, "the closed router left \(remaining) connections")
            // A closed router refuses, promptly, as unavailable.
            await #expect(throws: PostgresUnavailable.self) { _ = try await Self.serverPort(router) }
        } catch {
            await pair.down()
            throw error
        }
        await pair.down()
    }

    @Test("routers one after another in one process, each moved by a dead primary: each close returns with no pool left running")
    func routersOneAfterAnother() async throws {
        let pair = try await PostgresPair.start(sync: false)
        do {
            for round in 0..<2 {
                let router = PostgresRouter(url: try PostgresURL(pair.url), maxConnections: 4)
                let before = try await Self.serverPort(router)
                try await pair.stopPrimary()
                try await pair.promote()
                let after = before == pair.primaryPort ? pair.standbyPort : pair.primaryPort
                #expect(try await Self.eventually { (try? await Self.serverPort(router)) == after }, "round \(round): the router did not move")
                #expect(try await Self.eventually { router.poolsRunning == 1 }, "round \(round): pools running: \(router.poolsRunning)")
                let start = ContinuousClock.now
                await router.close()
                #expect(router.poolsRunning == 0)
                #expect(ContinuousClock.now - start < .seconds(20), "round \(round): close took \(ContinuousClock.now - start)")
                #expect(try await Self.eventually { try await Self.clients(pair, port: after) == 0 })
                try await pair.rejoin()
            }
        } catch {
            await pair.down()
            throw error
        }
        await pair.down()
    }
}
