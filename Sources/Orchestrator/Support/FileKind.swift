import Foundation

/// What a path names, from `stat` (symbolic links followed), so that a FIFO, a device or a
/// socket is never opened where a file is expected: opening a FIFO blocks until a writer comes,
/// and reading `/dev/zero` never ends.
enum FileKind: Equatable {
    case missing
    case regular(size: Int64)
    case directory
    /// Anything else, with a name a person recognises ("a FIFO (named pipe)").
    case special(String)

    static func of(_ path: String) -> FileKind {
        var info = stat()
        guard stat(path, &info) == 0 else { return .missing }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return .regular(size: Int64(info.st_size))
        case S_IFDIR: return .directory
        case S_IFIFO: return .special("a FIFO (named pipe)")
        case S_IFCHR: return .special("a character device")
        case S_IFBLK: return .special("a block device")
        case S_IFSOCK: return .special("a socket")
        default: return .special("not a regular file")
        }
    }

    /// How a message names it.
    var description: String {
        switch self {
        case .missing: "missing"
        case .regular: "a file"
        case .directory: "a folder"
        case .special(let name): name
        }
    }
}
