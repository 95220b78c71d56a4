import FuzzSupport
import PipelineSchema

// A pipeline file, loaded as `orchestrate validate` loads it, with no environment variables.
runFuzzer { bytes in
    let path = FuzzInput.write(bytes, to: "pipeline.yml")
    _ = try? PipelineLoader(environment: [:]).load(path)
}
