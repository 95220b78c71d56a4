public import Yams

extension NodeReader {
    /// Composes YAML text into a node tree, the one way every YAML file of the project is read:
    /// no implicit typing (every value is text, read by the type its key expects: `5`, `yes` and
    /// `1.0` stay as written) and no explicit tags, which `reportTags` refuses.
    ///
    /// - Throws: `YamlError` when the text is not YAML.
    public static func compose(_ yaml: String) throws -> Node? {
        try Yams.compose(yaml: yaml, .basic)
    }

    /// Reports every explicit tag in `root` (`!!str 5`, `!!int "x"`, `!custom`) with its line and
    /// column. A tag would ask for a type, or a constructor, that a key does not have: rather than
    /// honour it in some places and ignore it in others, no tag is read. Call it on a tree fresh
    /// from `compose`, before anything compares its values (which resolves their tags).
    ///
    /// - Parameter path: the dotted path of `root` (the key of a `--set` value).
    public func reportTags(in root: Node, path: String = "") {
        var pending: [(node: Node, path: String, isKey: Bool)] = [(root, path, false)]
        var visited = 0
        while let item = pending.popLast(), visited < InputLimits.maxExpandedNodes {
            visited += 1
            let (node, path, isKey) = item
            if let tag = Self.explicitTag(of: node, isKey: isKey) {
                report(
                    node, path,
                    "the YAML tag \(echoed(tag, limit: 40)) is not read: every value is text that its key reads as the type it expects; remove the tag (quote a value to keep it as written)"
                )
            }
            switch node {
            case .scalar, .alias:
                break
            case .sequence(let sequence):
                for (index, item) in sequence.enumerated() { pending.append((item, "\(path)[\(index)]", false)) }
            case .mapping(let mapping):
                for (key, value) in mapping {
                    let keyPath = join(path, echoed(key.scalar?.string ?? "?", limit: 40))
                    pending.append((key, keyPath, true))
                    pending.append((value, keyPath, false))
                }
            }
        }
    }

    /// The tag written on `node`, shortened (`!!int`), or nil when it has none. A quoted value
    /// carries `!!str` without one being written, and composing resolves keys (to `!!str`, with
    /// no implicit typing): an explicit `!!str` cannot be told from either, and means the same.
    static func explicitTag(of node: Node, isKey: Bool) -> String? {
        let name: String
        switch node {
        case .scalar(let scalar):
            name = scalar.tag.description
            if name == Tag.Name.str.rawValue && (isKey || scalar.style != .plain) { return nil }
        case .mapping(let mapping): name = mapping.tag.description
        case .sequence(let sequence): name = sequence.tag.description
        case .alias: return nil
        }
        guard !name.isEmpty else { return nil }
        let core = "tag:yaml.org,2002:"
        return name.hasPrefix(core) ? "!!" + name.dropFirst(core.count) : name
    }
}
