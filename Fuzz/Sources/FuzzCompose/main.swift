import EngineAPI
import FuzzSupport

// A compose file, read as the Docker runtime reads it, with one variable defined, and the order
// its services would start in.
runFuzzer { bytes in
    let path = FuzzInput.write(bytes, to: "compose.yml")
    if let file = try? ComposeFile.load(path, variables: ["TAG": "1"]) {
        _ = file.startOrder(Array(file.services.keys))
    }
    _ = try? ComposeFile.projectName(of: path)
}
