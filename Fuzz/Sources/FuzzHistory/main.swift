import FuzzSupport
import Provenance

// The first line is the head file (`<history>.head`), the rest the history itself; without a
// newline there is no head file. Reads every line and verifies the chain and the head.
runFuzzer { bytes in
    let (head, history) = FuzzInput.split(bytes, at: "\n")
    let path = FuzzInput.write(history ?? head, to: "history.jsonl")
    FuzzInput.write(history == nil ? nil : head, to: "history.jsonl.head")
    _ = try? ReleaseHistory(path: path).verify()
}
