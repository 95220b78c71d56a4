public import Foundation

/// A folder of this fuzzer process's own, where the loaders that read a path find the input.
public enum FuzzInput {
    public static let folder: String = {
        let path = NSTemporaryDirectory() + "fuzz-\(ProcessInfo.processInfo.processIdentifier)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    /// Writes `bytes` to `name` in the folder (replacing it) and returns its path; an absent
    /// `bytes` removes the file.
    @discardableResult
    public static func write(_ bytes: Data?, to name: String) -> String {
        let path = folder + "/" + name
        if let bytes {
            FileManager.default.createFile(atPath: path, contents: bytes)
        } else {
            try? FileManager.default.removeItem(atPath: path)
        }
        return path
    }

    /// The bytes before and after the first `separator`; nil after it when there is none.
    public static func split(_ data: Data, at separator: String) -> (Data, Data?) {
        guard let range = data.firstRange(of: Data(separator.utf8)) else { return (data, nil) }
        return (data[..<range.lowerBound], data[range.upperBound...])
    }
}

/// libFuzzer's driver (linked by `-sanitize=fuzzer`), called from the target's own `main` because
/// SwiftPM links an executable's `main` to the module's entry point, so libFuzzer's `main` is never used.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The function the running fuzzer calls with each input; set once, before the driver starts.
nonisolated(unsafe) private var fuzzTarget: (Data) -> Void = { _ in }

/// Runs libFuzzer with the process's arguments, calling `target` with each input, and exits.
public func runFuzzer(_ target: @escaping (Data) -> Void) -> Never {
    fuzzTarget = target
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv) { start, count in
        fuzzTarget(start.map { Data(bytes: $0, count: count) } ?? Data())
        return 0
    }
    exit(status)
}

/// The entry point libFuzzer's own `main` (FuzzerMain.cpp) names: a debug build links that
/// object, and it does not link without the symbol. It is never called (the target's `main`
/// runs the driver through `runFuzzer`), but if it is, it fuzzes the same target.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    fuzzTarget(start.map { Data(bytes: $0, count: count) } ?? Data())
    return 0
}
