import TesseraCore
import ServiceLifecycle

/// Runs the configuration monitors at each six-hour slot (``ConfigurationMonitors``). It looks at the clock every
/// `interval` and reads the store only when the slot has changed since its last pass, so a short interval costs
/// nothing; the first pass after a start catches up monitors a stopped server missed, after the snapshot jobs it left
/// unfinished are taken again.
struct ConfigurationMonitorService: Service {
    let app: TesseraApp
    var interval: Duration = .seconds(1)

    func run() async throws {
        let monitors = ConfigurationMonitors(app: app)
        await monitors.resumeInterrupted()
        var done: Int64?
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let slot = ConfigurationMonitors.slot(app.clock.now)
            if done != slot {
                await monitors.runDue()
                done = slot
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
