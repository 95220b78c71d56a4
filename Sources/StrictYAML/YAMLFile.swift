public import Foundation

/// Reads a YAML file with the bounds of a pipeline file: a regular file of at most
/// `InputLimits.maxFileBytes`, opened without blocking (a FIFO would block a plain open) and read
/// no further than the bound (a file that grows meanwhile is refused, not read on).
public enum YAMLFile {
    /// - Returns: the file's bytes.
    /// - Throws: `YAMLFileError` saying why not, for a person.
    public static func read(_ path: String, limit: Int = InputLimits.maxFileBytes) throws(YAMLFileError) -> Data {
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw YAMLFileError(path: path, reason: String(cString: strerror(errno))) }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw YAMLFileError(path: path, reason: "it is not a regular file (a FIFO, a device, a socket or a folder)")
        }
        var data = Data()
        do {
            while let chunk = try handle.read(upToCount: 64 << 10), !chunk.isEmpty {
                data.append(chunk)
                if data.count > limit { throw YAMLFileError(path: path, reason: "it is larger than \(limit) bytes") }
            }
        } catch let error as YAMLFileError {
            throw error
        } catch {
            throw YAMLFileError(path: path, reason: error.localizedDescription)
        }
        return data
    }
}

/// A YAML file that cannot be read, and why.
public struct YAMLFileError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String

    public var description: String { "\(path): cannot read it: \(reason)" }
}
