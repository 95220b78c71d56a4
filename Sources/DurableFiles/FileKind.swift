import Foundation

/// What a path names, from `stat` (symbolic links followed), so that a FIFO, a device or a
/// socket is never opened where a file is expected: opening a FIFO blocks until a writer comes,
/// and reading `/dev/zero` never ends. (Orchestrator's own `FileKind` is the same and can give
/// way to this one.)
public enum FileKind: Equatable, Sendable {
    case missing
    case regular(size: Int64)
    case directory
    /// Anything else, with a name a person recognises ("a FIFO (named pipe)").
    case special(String)

    public static func of(_ path: String) -> FileKind {
        var info = stat()
        guard stat(path, &info) == 0 else { return .missing }
        return FileKind(info)
    }

    /// What an open descriptor reads from: checked after opening, so that a file swapped for a
    /// FIFO between a check by path and the open is still caught.
    public static func of(descriptor: Int32) -> FileKind {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return .missing }
        return FileKind(info)
    }

    private init(_ info: stat) {
        switch info.st_mode & S_IFMT {
        case S_IFREG: self = .regular(size: Int64(info.st_size))
        case S_IFDIR: self = .directory
        case S_IFIFO: self = .special("a FIFO (named pipe)")
        case S_IFCHR: self = .special("a character device")
        case S_IFBLK: self = .special("a block device")
        case S_IFSOCK: self = .special("a socket")
        default: self = .special("not a regular file")
        }
    }

    /// How a message names it.
    public var description: String {
        switch self {
        case .missing: "missing"
        case .regular: "a file"
        case .directory: "a folder"
        case .special(let name): name
        }
    }
}
