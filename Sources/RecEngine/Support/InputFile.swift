import DurableFiles
import Foundation

/// Reads a whole input file (ratings, a model's files) with a bound: a FIFO, a device such as
/// `/dev/zero` or a folder is refused without being opened, and a file larger than the limit
/// without being read, so that no input can hang a command or exhaust its memory.
enum InputFile {
    /// Why the file could not be read, for a person ("it is not a regular file ...").
    struct Failure: Error {
        var reason: String
        /// The file is there but is not acceptable input (not regular, too large), as opposed to
        /// missing or unreadable.
        var isBadInput: Bool
    }

    static func read(_ path: String, limit: Int) throws(Failure) -> Data {
        do {
            guard let data = try AtomicFile.read(path, limit: limit) else {
                throw Failure(reason: "it does not exist", isBadInput: false)
            }
            return data
        } catch let failure as Failure {
            throw failure
        } catch let error as AtomicFileError {
            switch error.code {
            case EINVAL:
                throw Failure(reason: "it is not a regular file (a FIFO, a device or a folder)", isBadInput: true)
            case EFBIG: throw Failure(reason: "it is larger than \(limit >> 20) MiB, the most read", isBadInput: true)
            default: throw Failure(reason: String(cString: strerror(error.code)), isBadInput: false)
            }
        } catch {
            throw Failure(reason: "\(error)", isBadInput: false)
        }
    }
}
