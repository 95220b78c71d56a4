import Foundation
import Logging
import OrchestratorSupport
public import ServiceLifecycle
import StrictYAML
import Synchronization
import UnixSignals

/// `orchestrate run` as a service with graceful shutdown: a SIGTERM or SIGINT (a CI cancel, a job
/// timeout, Ctrl-C) interrupts the run, which puts traffic back on the live colour, stops what it
/// started, records the release as interrupted, and ends. A second signal exits at once, leaving
/// the state for recovery.
public final class ReleaseService: Service, Sendable {
    let controller: ReleaseController
    let interruption: Interruption
    private let result = Mutex<Result<ReleaseController.RunResult, any Error>?>(nil)

    init(controller: ReleaseController, interruption: Interruption) {
        self.controller = controller
        self.interruption = interruption
    }

    public func run() async throws {
        let outcome: Result<ReleaseController.RunResult, any Error>
        do {
            let value = try await withGracefulShutdownHandler {
                try await controller.run(interruption: interruption)
            } onGracefulShutdown: { [interruption] in
                interruption.raise(SIGTERM)
            }
            outcome = .success(value)
        } catch {
            outcome = .failure(error)
        }
        result.withLock { $0 = outcome }
    }

    /// Runs the release with the signals handled as described above.
    public static func run(_ controller: ReleaseController) async throws -> ReleaseController.RunResult {
        let interruption = Interruption()
        let service = ReleaseService(controller: controller, interruption: interruption)
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(
                        service: service, successTerminationBehavior: .gracefullyShutdownGroup,
                        failureTerminationBehavior: .gracefullyShutdownGroup)
                ],
                logger: Logger(label: "orchestrate", factory: { _ in SwiftLogNoOpLogHandler() })))
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                for await signal in signals {
                    if interruption.isRaised {
                        controller.progress(
                            "\(signal) again: exiting now; the next run (or orchestrate recover) converges what is left"
                        )
                        _exit(ExitStatus.interrupted(by: signal.rawValue))
                    }
                    controller.progress(
                        "\(signal): rolling back to the live colour, then exiting (send it again to exit at once)")
                    interruption.raise(signal.rawValue)
                    await group.triggerGracefulShutdown()
                }
            }
            tasks.addTask { try await group.run() }
            try await tasks.next()
            tasks.cancelAll()
        }
        guard let outcome = service.result.withLock({ $0 }) else { throw CancellationError() }
        return try outcome.get()
    }
}
