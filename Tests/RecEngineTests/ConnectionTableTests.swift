import NIOCore
import NIOEmbedded
import Testing

@testable import RecEngineServer

@Suite struct ConnectionTableTests {
    /// An open channel on NIO's embedded event loop, to be counted and closed.
    static func openChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
        return channel
    }

    @Test func atTheCapTheConnectionWaitingLongestIsClosed() throws {
        let table = ConnectionTable(maximum: 2)
        let first = try Self.openChannel()
        let second = try Self.openChannel()
        #expect(table.admit(first) == .admitted)
        #expect(table.admit(second) == .admitted)
        let third = try Self.openChannel()
        #expect(table.admit(third) == .admittedClosingTheLongestWaiting)
        #expect(!first.isActive, "the first waited longest")
        #expect(second.isActive && third.isActive)
        #expect(table.count == 2)
    }

    @Test func aConnectionBusyWithARequestIsNotClosed() throws {
        let table = ConnectionTable(maximum: 2)
        let busy = try Self.openChannel()
        let waiting = try Self.openChannel()
        #expect(table.admit(busy) == .admitted)
        #expect(table.admit(waiting) == .admitted)
        table.requestStarted(on: busy)
        let third = try Self.openChannel()
        #expect(table.admit(third) == .admittedClosingTheLongestWaiting)
        #expect(busy.isActive)
        #expect(!waiting.isActive)
        // Its answer written, it waits again, from now: the third has waited longer.
        table.requestFinished(on: busy)
        #expect(table.admit(try Self.openChannel()) == .admittedClosingTheLongestWaiting)
        #expect(busy.isActive)
        #expect(!third.isActive)
    }

    @Test func whenEveryConnectionIsBusyTheNewOneIsRefused() throws {
        let table = ConnectionTable(maximum: 1)
        let busy = try Self.openChannel()
        #expect(table.admit(busy) == .admitted)
        table.requestStarted(on: busy)
        #expect(table.admit(try Self.openChannel()) == .refused)
        #expect(busy.isActive)
        #expect(table.count == 1)
        table.remove(busy)
        #expect(table.count == 0)
        #expect(table.admit(try Self.openChannel()) == .admitted)
    }

    @Test(arguments: [(UInt64(1024), 960), (512, 448), (64, 1), (0, 1), (UInt64.max, Int.max)])
    func theDefaultCapLeavesDescriptorsForTheRest(limit: UInt64, expected: Int) {
        #expect(
            InferenceServerConfiguration.ConnectionLimits.defaultMaximumConnections(descriptorLimit: limit) == expected)
    }
}
