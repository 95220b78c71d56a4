import DurableFiles
import EngineAPI
import Foundation
import OrchestratorSupport
import RecEngineContract
import StrictYAML
import Traffic
import Yams

/// Turns the YAML tree into a `Pipeline`, reporting every problem through the reader.
struct PipelineDecoder {
    let reader: NodeReader
    /// The pipeline file's folder: relative paths are resolved against it, as docker compose does.
    let directory: String

    static let namePattern = "letters, digits, '.', '_' and '-', starting with a letter or digit"
    static let colorPattern = "at most 32 letters, digits, '_' and '-', starting with a letter"

    /// Whether the file names a train stage, even one with problems of its own (so that its
    /// problems are not echoed as a missing model).
    var declaresTrainStage = false

    func decode(_ root: Node, file: String, sha256: String) -> Pipeline? {
        guard
            let map = reader.mapping(
                root, "",
                allowed: [
                    "version", "name", "history", "secrets", "stages", "deploy", "traffic", "analysis", "rollback",
                    "hooks", "notify", "metrics", "policy", "webhooks",
                ])
        else { return nil }
        var version: Int?
        if let node = reader.required(map, "version", "", in: root),
            let value = reader.int(node, "version", range: 0...Int.max)
        {
            if value != Pipeline.currentVersion {
                reader.report(
                    node, "version",
                    "version \(value) is not supported: this orchestrate reads version \(Pipeline.currentVersion)")
            }
            version = value
        }
        let name = reader.required(map, "name", "", in: root).flatMap { validName($0, "name") }
        let history =
            map["history"].flatMap { reader.nonEmptyString($0, "history") }.map(resolve)
            ?? resolve(Pipeline.defaultHistory)
        let stages = reader.required(map, "stages", "", in: root).flatMap(decodeStages) ?? []
        var decoder = self
        decoder.declaresTrainStage =
            map["stages"]?.sequence?.contains { $0.mapping?["uses"]?.scalar?.string == "train" } ?? false
        let deploy = map["deploy"].flatMap { decoder.decodeDeploy($0, pipelineName: name ?? "service", stages: stages) }
        let traffic = map["traffic"].flatMap { decodeTraffic($0, pipelineName: name ?? "service") }
        let analysis = map["analysis"].flatMap(decodeAnalysis)
        let rollback = decodeRollback(map["rollback"])
        let hooks = decodeHooks(map["hooks"])
        let notify = map["notify"].flatMap(decodeNotify)
        let metrics = map["metrics"].flatMap(decodeMetrics)
        let policy = map["policy"].flatMap(decodePolicy)
        let webhooks = map["webhooks"].map(decodeWebhookGates) ?? []
        if !webhooks.isEmpty && deploy == nil && map["deploy"] == nil {
            reader.report(
                map["webhooks"], "webhooks", "webhooks needs a deploy section: they are asked during the rollout")
        }
        if traffic != nil && deploy == nil && map["deploy"] == nil {
            reader.report(
                map["traffic"], "traffic",
                "traffic needs a deploy section: it shifts users between the deployed colours")
        }
        if analysis != nil && traffic == nil && map["traffic"] == nil {
            reader.report(
                map["analysis"], "analysis",
                "analysis needs a traffic section: its gates are checked at each traffic step")
        }
        checkInterleaving(traffic: traffic, analysis: analysis, map: map, root: root)
        let secrets = decodeSecrets(map["secrets"])
        guard let version, let name else { return nil }
        var pipeline = Pipeline(
            version: version, name: name, file: file, sha256: sha256, history: history, stages: stages, deploy: deploy,
            traffic: traffic, analysis: analysis, rollback: rollback, hooks: hooks)
        pipeline.secrets = secrets
        pipeline.notify = notify
        pipeline.metrics = metrics
        pipeline.policy = policy
        pipeline.webhooks = webhooks
        let fromVariables = reader.interpolated.filter { secrets.contains($0.key) || Redaction.isSecretName($0.key) }
            .map(\.value)
        let fromEnv = stages.flatMap {
            $0.env.filter { secrets.contains($0.key) || Redaction.isSecretName($0.key) }.map(\.value)
        }
        // A notification's URL and header values are secrets whatever their variables are named;
        // a webhook gate's user info and query are (the plan shows the rest of its URL).
        let fromWebhooks =
            (notify?.webhooks.flatMap { [$0.url] + $0.headers.values } ?? [])
            + webhooks.flatMap { $0.secretURLParts + ($0.secret.map { [$0] } ?? []) }
        pipeline.redaction = Redaction(values: fromVariables + fromEnv + fromWebhooks)
        if traffic != nil {
            checkNginxFolder(Pipeline.nginxFolder(inStateFolder: pipeline.stateFolder), at: map["history"] ?? root)
        }
        return pipeline
    }

    static func unique(_ paths: [String]) -> [String] {
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }

    /// nginx's runtime folder lies under the history's folder and is written into nginx's
    /// configuration and Lua unquoted, and its control socket's path must fit a unix socket
    /// address: `run` would refuse it at the first step, so `validate` does now.
    private func checkNginxFolder(_ folder: String, at node: Node) {
        if let bad = folder.first(where: { ";{}\"'\n\r\t\\ $#".contains($0) }) {
            reader.report(
                node, "history",
                "nginx's runtime folder \(echoed(folder)) (beside the history) contains \(echoed("\"\(bad)\"")),"
                    + " which nginx or Lua would misread: move the history to a folder without spaces, quotes, ;, {}, $, # or \\"
            )
        } else if (folder + "/control.sock").utf8.count > 107 {
            reader.report(
                node, "history",
                "nginx's control socket \(echoed(folder))/control.sock (beside the history) is longer than 107 bytes, the limit of a unix socket: use a shorter history path"
            )
        }
    }

    /// `secrets: [NAME, ...]`: variables whose values are redacted besides those named like secrets.
    private func decodeSecrets(_ node: Node?) -> [String] {
        guard let node, let names = reader.stringList(node, "secrets") else { return [] }
        for name in names
        where !(name.first.map { $0 == "_" || $0.isLetter } ?? false)
            || !name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) })
        {
            reader.report(node, "secrets", "\"\(echoed(name))\" is not a variable name (letters, digits and _)")
        }
        return names
    }

    func resolve(_ path: String) -> String {
        let url =
            path.hasPrefix("/")
            ? URL(fileURLWithPath: path) : URL(fileURLWithPath: directory).appendingPathComponent(path)
        return url.standardizedFileURL.path
    }

    private func validName(_ node: Node, _ path: String) -> String? {
        guard let text = reader.nonEmptyString(node, path) else { return nil }
        // Names become folder and file names (releases/state/SERVICE, nginx/generated/NAME.conf):
        // never "." or "..", never hidden.
        guard text.count <= 63, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }),
            let first = text.first, first.isLetter || first.isNumber
        else {
            reader.report(node, path, "\"\(echoed(text))\" must be at most 63 \(Self.namePattern)")
            return nil
        }
        return text
    }

    // MARK: Stages

    private func decodeStages(_ node: Node) -> [Stage]? {
        guard let items = reader.sequence(node, "stages") else { return nil }
        if items.isEmpty { reader.report(node, "stages", "a pipeline needs at least one stage") }
        var stages: [Stage] = []
        var seen: [String: Node] = [:]
        for (index, item) in items.enumerated() {
            guard let stage = decodeStage(item, index: index) else { continue }
            if seen[stage.name] != nil {
                reader.report(
                    item.mapping?["name"] ?? item, "stages[\(index)].name", "duplicate stage name \"\(stage.name)\"")
                continue
            }
            seen[stage.name] = item
            stages.append(stage)
        }
        checkTunedTraining(stages, nodes: seen)
        return stages
    }

    /// A train stage that reads a tune stage's choice (its `tuned` is the tune's `output`) runs
    /// after it, trains the algorithm it tuned, and leaves the parameters it searches to it (a
    /// parameter set in both would be refused when the stage runs).
    private func checkTunedTraining(_ stages: [Stage], nodes: [String: Node]) {
        for (index, train) in stages.enumerated() {
            guard case .builtin(.train(let training)) = train.action, let tuned = training.tuned else { continue }
            let with = nodes[train.name]?.mapping?["with"]?.mapping
            let path = "stages.\(train.name).with"
            guard
                let tuneIndex = stages.firstIndex(where: {
                    if case .builtin(.tune(let tuning)) = $0.action { return tuning.output == tuned }
                    return false
                }), case .builtin(.tune(let tuning)) = stages[tuneIndex].action
            else { continue }
            let tune = stages[tuneIndex].name
            if tuneIndex > index {
                reader.report(
                    with?["tuned"], "\(path).tuned",
                    "the tune stage \"\(tune)\" writes \(echoed(tuned)) after this stage runs: put it before")
            }
            if tuning.algorithm != training.algorithm {
                reader.report(
                    with?["algorithm"] ?? with?["tuned"], "\(path).algorithm",
                    "the tune stage \"\(tune)\" tunes \(tuning.algorithm.rawValue) and this stage trains \(training.algorithm.rawValue): train the algorithm that was tuned"
                )
            }
            guard
                let space = try? SearchSpace(
                    algorithm: tuning.algorithm.rawValue, parsing: tuning.space, strategy: tuning.strategy,
                    samples: tuning.samples)
            else { continue }
            for name in space.values.keys.sorted() where with?[name] != nil {
                reader.report(
                    with?[name], "\(path).\(name)",
                    "\(name) is chosen by the tune stage \"\(tune)\": leave it out here (set in both, the stage would refuse to run)"
                )
            }
        }
    }

    private func decodeStage(_ node: Node, index: Int) -> Stage? {
        let fallbackPath = "stages[\(index)]"
        guard
            let map = reader.mapping(
                node, fallbackPath,
                allowed: [
                    "name", "uses", "with", "run", "image", "env", "inputs", "outputs", "metrics", "timeout", "retries",
                    "gate",
                ])
        else { return nil }
        guard let nameNode = reader.required(map, "name", fallbackPath, in: node),
            let name = validName(nameNode, "\(fallbackPath).name")
        else {
            return nil
        }
        let path = "stages.\(name)"
        var action: Stage.Action?
        switch (map["uses"], map["run"]) {
        case (let uses?, nil):
            if let kind = reader.choice(uses, "\(path).uses", among: BuiltinStage.allCases.map(\.rawValue)).flatMap(
                BuiltinStage.init)
            {
                action = decodeBuiltin(kind, map["with"], path: path, in: node).map { .builtin($0) }
            }
        case (nil, let run?):
            if case .scalar = run {
                reader.report(
                    run, "\(path).run",
                    "run takes an argument vector, e.g. [python3, train.py, --epochs, \"20\"]; shell strings are never run"
                )
            } else if let argv = reader.stringList(run, "\(path).run") {
                if argv.isEmpty { reader.report(run, "\(path).run", "the argument vector is empty") }
                action = argv.isEmpty ? nil : .command(argv)
            }
            if let with = map["with"] {
                reader.report(
                    with, "\(path).with",
                    "with: gives parameters to built-in stages (uses:); pass a command's parameters in run:")
            }
        case (.some, .some):
            reader.report(node, path, "a stage has either uses: (a built-in) or run: (a command), not both")
        case (nil, nil):
            reader.report(
                node, path,
                "a stage needs uses: (one of \(BuiltinStage.allCases.map(\.rawValue).joined(separator: ", "))) or run: (an argument vector)"
            )
        }
        let env = reader.stringMap(map["env"], "\(path).env")
        let inputs = (map["inputs"].flatMap { reader.stringList($0, "\(path).inputs") } ?? []).map(resolve)
        let outputs = (map["outputs"].flatMap { reader.stringList($0, "\(path).outputs") } ?? []).map(resolve)
        let metricsFile = map["metrics"].flatMap { reader.nonEmptyString($0, "\(path).metrics") }.map(resolve)
        if metricsFile != nil, case .builtin = action {
            reader.report(
                map["metrics"], "\(path).metrics",
                "built-in stages report their metrics themselves; metrics: is for run: stages")
        }
        let timeout = map["timeout"].flatMap { node -> PipelineDuration? in
            guard let value = reader.duration(node, "\(path).timeout", maximum: .maximumStageTimeout) else {
                return nil
            }
            if value.milliseconds == 0 { reader.report(node, "\(path).timeout", "must be longer than 0s") }
            return value
        }
        let retries = map["retries"].flatMap { reader.int($0, "\(path).retries", range: 0...10) } ?? 0
        let gate =
            map["gate"].map { decodeGate($0, path: "\(path).gate", action: action, hasMetricsFile: metricsFile != nil) }
            ?? []
        guard let action else { return nil }
        var allInputs = inputs
        var allOutputs = outputs
        if case .builtin(let builtin) = action {
            let parameters = builtin.values
            for parameter in builtin.kind.parameters {
                guard case .string(let value)? = parameters[parameter.name] else { continue }
                if parameter.kind == .inputPath
                    || (parameter.kind == .source && parameters["format"] == .string("ratings"))
                {
                    allInputs.append(value)
                }
                if parameter.kind == .outputPath { allOutputs.append(value) }
            }
        }
        // A path listed twice (or also named by a built-in's parameter) is one input.
        allInputs = Self.unique(allInputs)
        allOutputs = Self.unique(allOutputs)
        for (key, paths) in [
            ("inputs", allInputs), ("outputs", allOutputs), ("metrics", [metricsFile].compactMap { $0 }),
        ] {
            for path in paths {
                guard case .special(let kind) = FileKind.of(path) else { continue }
                reader.report(
                    map[key] ?? map["with"] ?? node,
                    "\(path == metricsFile ? "stages.\(name).metrics" : "stages.\(name).\(key)")",
                    "\(echoed(path)) is \(kind): a stage reads and writes regular files and folders (it would block or never end)"
                )
            }
        }
        var stage = Stage(
            name: name, action: action, env: env, inputs: allInputs, outputs: allOutputs, metricsFile: metricsFile,
            timeout: timeout, retries: retries, gate: gate)
        if let imageNode = map["image"] {
            if case .builtin = action {
                reader.report(
                    imageNode, "\(path).image",
                    "image: runs a run: stage's argument vector in a container; built-ins run in process")
            }
            stage.image = reader.nonEmptyString(imageNode, "\(path).image")
        }
        return stage
    }

    private func decodeBuiltin(
        _ kind: BuiltinStage, _ node: Node?, path: String, in stageNode: Node
    ) -> BuiltinParameters? {
        let withPath = "\(path).with"
        let map: [String: Node]
        if let node {
            guard let decoded = reader.mapping(node, withPath, allowed: kind.parameters.map(\.name)) else { return nil }
            map = decoded
        } else {
            map = [:]
        }
        var values: [String: ParameterValue] = [:]
        var complete = true
        for parameter in kind.parameters {
            let parameterPath = "\(withPath).\(parameter.name)"
            guard let valueNode = map[parameter.name] else {
                if let value = parameter.defaultValue {
                    values[parameter.name] = value
                } else if !kind.optionalParameters.contains(parameter.name) {
                    reader.report(
                        node ?? stageNode, parameterPath,
                        "missing required parameter \"\(parameter.name)\" of the \(kind.rawValue) stage")
                    complete = false
                }
                continue
            }
            let value: ParameterValue?
            switch parameter.kind {
            case .inputPath, .outputPath, .statePath:
                value = reader.nonEmptyString(valueNode, parameterPath).map { .string(resolve($0)) }
            case .source:
                value = reader.nonEmptyString(valueNode, parameterPath).flatMap { text -> ParameterValue? in
                    do {
                        switch try MovieLogSource(parsing: text) {
                        case .files(let path): return .string(resolve(path))
                        case .standardInput, .kafka: return .string(text)
                        }
                    } catch let error as RecEngineError {
                        reader.report(valueNode, parameterPath, error.message + (error.hint.map { "; \($0)" } ?? ""))
                        return nil
                    } catch {
                        return nil
                    }
                }
            case .text:
                value = reader.nonEmptyString(valueNode, parameterPath).map { .string($0) }
            case .integer(let range):
                value = reader.int(valueNode, parameterPath, range: range).map { .integer($0) }
            case .number(let range):
                value = reader.double(valueNode, parameterPath).flatMap { number in
                    guard range.contains(number) else {
                        reader.report(
                            valueNode, parameterPath,
                            "must be from \(formatNumber(range.lowerBound)) to \(formatNumber(range.upperBound)), got \(formatNumber(number))"
                        )
                        return nil
                    }
                    return .number(number)
                }
            case .choice(let choices):
                value = reader.choice(valueNode, parameterPath, among: choices).map { .string($0) }
            }
            if let value { values[parameter.name] = value } else { complete = false }
        }
        if kind == .ingest, complete { checkIngest(&values, map: map, path: withPath) }
        if kind == .split, complete { checkSplit(values, map: map, path: withPath) }
        if kind == .train, complete { checkTrain(&values, map: map, path: withPath) }
        if kind == .tune, complete { checkTune(values, map: map, path: withPath) }
        guard complete else { return nil }
        do {
            return try BuiltinParameters(kind, values: values)
        } catch {
            // The values were checked above: this is a mistake in the parameters' tables.
            reader.report(node ?? stageNode, withPath, error.description)
            return nil
        }
    }

    /// A temporal split's options go with `mode: temporal`; a future share needs its file.
    private func checkSplit(_ values: [String: ParameterValue], map: [String: Node], path: String) {
        let temporal = values["mode"] == .string("temporal")
        for name in ["lastN", "futureShare", "future"] where map[name] != nil && !temporal {
            reader.report(map[name], "\(path).\(name)", "\(name) goes with mode: temporal")
        }
        let share: Double =
            switch values["futureShare"] {
            case .number(let value)?: value
            case .integer(let value)?: Double(value)
            default: 0
            }
        if temporal && (share > 0) != (values["future"] != nil) {
            reader.report(
                map["futureShare"] ?? map["future"], "\(path).futureShare",
                "futureShare and future go together: the share of the newest ratings and the file they go to")
        }
    }

    /// SVD learns from ratings alone: watch events and the implicit models' knobs go with
    /// `algorithm: als` (or `ease`, which takes no alpha). EASE's item-item matrix must fit the
    /// machine: when its ratings file is already there, its catalogue is checked now.
    private func checkTrain(_ values: inout [String: ParameterValue], map: [String: Node], path: String) {
        if values["tuned"] != nil {
            // Left out, a tuned train stage takes the tune's choice or the algorithm's default.
            for name in ["lr", "alpha"] where map[name] == nil { values[name] = nil }
        }
        switch values["algorithm"] {
        case .string("als")?:
            return
        case .string("ease")?:
            if map["alpha"] != nil {
                reader.report(
                    map["alpha"], "\(path).alpha", "alpha is for algorithm: als (EASE weighs every interaction alike)")
            }
            checkEASEFits(values, map: map, path: path)
        default:
            for name in ["watches", "alpha", "threads"] where map[name] != nil {
                reader.report(
                    map[name], "\(path).\(name)",
                    "\(name) is for algorithm: als or ease (SVD learns from ratings alone)")
            }
        }
    }

    /// EASE's item-item matrix must fit the machine: when the stage's ratings file is already
    /// there, its catalogue is checked now (`RatingsCatalogue` counts its items by the ratings
    /// reader's rules; `EASEMemory` is the arithmetic `recengine` refuses with).
    private func checkEASEFits(_ values: [String: ParameterValue], map: [String: Node], path: String) {
        guard case .string(let ratings)? = values["ratings"], let items = RatingsCatalogue.itemCount(ofFile: ratings)
        else { return }
        do {
            try EASEMemory.requireFits(items: items, location: ratings)
        } catch let error as RecEngineError {
            reader.report(map["algorithm"], "\(path).algorithm", error.message + (error.hint.map { "; \($0)" } ?? ""))
        } catch {
            return
        }
    }

    /// A tune stage's space parses for its algorithm with its strategy; `samples` goes with
    /// `strategy: random` and `lastN` with `validation: temporal`; EASE's catalogue must fit.
    private func checkTune(_ values: [String: ParameterValue], map: [String: Node], path: String) {
        guard case .string(let algorithm)? = values["algorithm"], case .string(let space)? = values["space"],
            case .string(let strategy)? = values["strategy"]
        else { return }
        let samples: Int? = if case .integer(let count)? = values["samples"] { count } else { nil }
        if strategy == "random" && samples == nil {
            reader.report(
                map["strategy"], "\(path).samples", "strategy: random needs samples: N, how many combinations to try")
        } else if strategy != "random" && samples != nil {
            reader.report(
                map["samples"], "\(path).samples",
                "samples goes with strategy: random (\(strategy) tries every combination)")
        }
        if strategy == "halving" && algorithm == "ease" {
            reader.report(
                map["strategy"], "\(path).strategy",
                "successive halving trains for more epochs each round: it is for algorithm svd or als (EASE is solved in one step)"
            )
            return
        }
        if map["lastN"] != nil && values["validation"] != .string("temporal") {
            reader.report(map["lastN"], "\(path).lastN", "lastN goes with validation: temporal")
        }
        if algorithm == "svd" && map["threads"] != nil {
            reader.report(
                map["threads"], "\(path).threads", "threads is for algorithm: als or ease (SVD trains on one thread)")
        }
        do {
            _ = try SearchSpace(algorithm: algorithm, parsing: space, strategy: strategy, samples: samples ?? 1)
        } catch let error as RecEngineError {
            reader.report(map["space"], "\(path).space", error.message)
        } catch {
            return
        }
        if algorithm == "ease" { checkEASEFits(values, map: map, path: path) }
    }

    /// A ratings file is a file; a movie log ingest keeps its store next to its output by default.
    private func checkIngest(_ values: inout [String: ParameterValue], map: [String: Node], path: String) {
        guard case .string(let format)? = values["format"], case .string(let source)? = values["source"] else { return }
        if format == "ratings" {
            if source == "-" || source.hasPrefix("kafka://") {
                reader.report(
                    map["source"], "\(path).source",
                    "format: ratings reads a ratings file; standard input and Kafka carry the movie log (format: movielog)"
                )
            }
            for name in ["watches", "rejects", "store"] where map[name] != nil {
                reader.report(map[name], "\(path).\(name)", "\(name) is for format: movielog")
            }
        } else if values["store"] == nil, case .string(let output)? = values["output"] {
            values["store"] = .string((output as NSString).deletingLastPathComponent + "/ingest-store")
        }
    }

    private func decodeGate(
        _ node: Node, path: String, action: Stage.Action?, hasMetricsFile: Bool
    ) -> [MetricThreshold] {
        guard case .mapping(let mapping) = node else {
            reader.report(node, path, "expected a mapping of metric names to {min, max}, e.g. rmse: {max: 0.95}")
            return []
        }
        if case .command? = action, !hasMetricsFile {
            reader.report(
                node, path,
                "a run: stage is gated on the metrics it writes: add metrics: FILE (a JSON object of numbers)")
        }
        var thresholds: [MetricThreshold] = []
        for (keyNode, valueNode) in mapping {
            guard let metric = keyNode.scalar?.string else { continue }
            let metricPath = "\(path).\(echoed(metric, limit: 40))"
            if case .builtin(let builtin)? = action, !builtin.kind.metrics.contains(metric) {
                let kind = builtin.kind
                let hint =
                    reader.suggestion(for: metric, among: kind.metrics).map { ": did you mean \"\($0)\"?" }
                    ?? " (it reports \(kind.metrics.joined(separator: ", ")))"
                reader.report(
                    keyNode, metricPath, "the \(kind.rawValue) stage reports no metric \"\(echoed(metric))\"\(hint)")
                continue
            }
            guard let bounds = reader.mapping(valueNode, metricPath, allowed: ["min", "max", "history"]) else {
                continue
            }
            let min = bounds["min"].flatMap { reader.double($0, "\(metricPath).min") }
            let max = bounds["max"].flatMap { reader.double($0, "\(metricPath).max") }
            let history = bounds["history"].flatMap { decodeHistoryBound($0, path: "\(metricPath).history") }
            if bounds.isEmpty { reader.report(valueNode, metricPath, "give min:, max:, history: or several") }
            if let min, let max, min > max {
                reader.report(valueNode, metricPath, "min \(formatNumber(min)) is above max \(formatNumber(max))")
            }
            thresholds.append(MetricThreshold(metric: metric, min: min, max: max, history: history))
        }
        return thresholds
    }

    // MARK: Deploy, traffic, analysis, rollback, hooks

    private func decodeDeploy(_ node: Node, pipelineName: String, stages: [Stage]) -> DeploySpec? {
        guard
            let map = reader.mapping(
                node, "deploy", allowed: ["runtime", "service", "colors", "model", "health", "args", "docker", "swarm"])
        else { return nil }
        let runtime =
            map["runtime"].flatMap { reader.choice($0, "deploy.runtime", among: ["process", "docker", "swarm"]) }
            ?? "process"
        let service = map["service"].flatMap { validName($0, "deploy.service") } ?? pipelineName
        var colors = ["blue", "green"]
        if let node = map["colors"], let list = reader.stringList(node, "deploy.colors") {
            if list.count != 2 || Set(list).count != 2 {
                reader.report(
                    node, "deploy.colors", "blue/green needs exactly two different colours, got \(echoed("\(list)"))")
            } else if let bad = list.first(where: { !Self.isColorName($0) }) {
                reader.report(node, "deploy.colors", "colour \"\(echoed(bad))\" must be \(Self.colorPattern)")
            } else {
                colors = list
            }
        }
        var model = map["model"].flatMap { reader.nonEmptyString($0, "deploy.model") }.map(resolve)
        if model == nil {
            model =
                stages.lazy.compactMap { stage -> String? in
                    if case .builtin(.train(let training)) = stage.action { return training.model }
                    return nil
                }.first
            if model == nil && !declaresTrainStage {
                reader.report(node, "deploy.model", "no model to deploy: set deploy.model or add a train stage")
            }
        }
        var health = HealthCheckSpec(path: "/health", timeout: .seconds(30))
        if let healthNode = map["health"],
            let healthMap = reader.mapping(healthNode, "deploy.health", allowed: ["path", "timeout"])
        {
            if let node = healthMap["path"], let path = reader.nonEmptyString(node, "deploy.health.path") {
                if path.hasPrefix("/")
                    && !path.contains(where: { $0.isWhitespace || $0 == ";" || $0 == "{" || $0 == "}" })
                {
                    health.path = path
                } else {
                    reader.report(
                        node, "deploy.health.path", "must be a URL path starting with /, without spaces, ; or braces")
                }
            }
            if let node = healthMap["timeout"], let timeout = reader.duration(node, "deploy.health.timeout") {
                health.timeout = timeout
            }
        }
        var spec = DeploySpec(runtime: runtime, service: service, colors: colors, model: model, health: health)
        spec.args = map["args"].flatMap { reader.stringList($0, "deploy.args") } ?? []
        if let dockerNode = map["docker"],
            let docker = reader.mapping(
                dockerNode, "deploy.docker", allowed: ["host", "certificates", "compose", "insecure"])
        {
            let host = docker["host"].flatMap { reader.nonEmptyString($0, "deploy.docker.host") }
            if let host, !host.hasPrefix("unix://") && !host.hasPrefix("tcp://") {
                reader.report(
                    docker["host"], "deploy.docker.host", "must be unix:///PATH or tcp://HOST:PORT, got \(echoed(host))"
                )
            }
            let compose = reader.required(docker, "compose", "deploy.docker", in: dockerNode).flatMap {
                reader.nonEmptyString($0, "deploy.docker.compose")
            }
            let certificates = docker["certificates"].flatMap {
                reader.nonEmptyString($0, "deploy.docker.certificates")
            }.map(resolve)
            let insecure = docker["insecure"].flatMap { reader.bool($0, "deploy.docker.insecure") }
            if let compose {
                spec.docker = DockerSpec(
                    host: host, certificates: certificates, compose: resolve(compose), insecure: insecure)
            }
            // What a run would refuse before reaching the engine (plain HTTP to another machine,
            // certificates missing), refused here already.
            if host == nil || host?.hasPrefix("tcp://") == true {
                do {
                    _ = try DockerEngine.configured(
                        host: host, certificates: certificates, insecure: insecure ?? false,
                        environment: reader.environment)
                } catch let error as EngineClientError {
                    reader.report(
                        docker["host"] ?? dockerNode, "deploy.docker",
                        error.message + (error.hint.map { " (\($0))" } ?? ""))
                } catch {}
            }
        }
        if let swarmNode = map["swarm"] {
            spec.swarm = decodeSwarm(swarmNode, colors: colors)
        } else if runtime == "swarm" {
            reader.report(
                node, "deploy.swarm",
                "runtime: swarm needs swarm: {host: MANAGER, engines: [EVERY NODE'S ENGINE], ports: {COLOUR: PORT}}")
        }
        if runtime == "docker" && map["docker"] == nil {
            reader.report(
                node, "deploy.docker",
                "runtime: docker needs docker: {compose: FILE} (a service per colour and lb), e.g. ../compose/recommender.yml"
            )
        }
        return spec
    }

    private func decodeSwarm(_ node: Node, colors: [String]) -> SwarmSpec? {
        let allowed = [
            "host", "engines", "certificates", "insecure", "image", "replicas", "minHealthyReplicas", "ports",
            "constraints", "spread",
            "maxReplicasPerNode", "publish",
        ]
        guard let map = reader.mapping(node, "deploy.swarm", allowed: allowed) else { return nil }
        func engineHost(_ node: Node?, _ path: String) -> String? {
            guard let host = reader.nonEmptyString(node, path) else { return nil }
            guard host.hasPrefix("unix://") || host.hasPrefix("tcp://") else {
                reader.report(node, path, "must be unix:///PATH or tcp://HOST:PORT, got \(echoed(host))")
                return nil
            }
            return host
        }
        let host = map["host"].flatMap { engineHost($0, "deploy.swarm.host") }
        var engines: [String]?
        if let items = reader.sequence(map["engines"], "deploy.swarm.engines") {
            engines = items.enumerated().compactMap { engineHost($1, "deploy.swarm.engines[\($0)]") }
        }
        let certificates = map["certificates"].flatMap { reader.nonEmptyString($0, "deploy.swarm.certificates") }.map(
            resolve)
        let insecure = map["insecure"].flatMap { reader.bool($0, "deploy.swarm.insecure") }
        // nginx's balancer takes at most this many addresses per colour.
        let most = TrafficSplit.maximumAddresses
        let replicas = map["replicas"].flatMap { reader.int($0, "deploy.swarm.replicas", range: 1...most) } ?? 1
        let minHealthy =
            map["minHealthyReplicas"].flatMap { reader.int($0, "deploy.swarm.minHealthyReplicas", range: 1...most) }
            ?? replicas
        if minHealthy > replicas {
            reader.report(
                map["minHealthyReplicas"], "deploy.swarm.minHealthyReplicas",
                "is \(minHealthy), more than the \(replicas) replicas")
        }
        var ports: [String: Int] = [:]
        for (index, color) in colors.enumerated() { ports[color] = 18081 + index }
        if let portsNode = map["ports"], let portMap = reader.mapping(portsNode, "deploy.swarm.ports", allowed: colors)
        {
            for (color, value) in portMap {
                if let port = reader.int(value, "deploy.swarm.ports.\(color)", range: 1...65535) { ports[color] = port }
            }
        }
        if Set(ports.values).count != ports.count {
            reader.report(
                map["ports"] ?? node, "deploy.swarm.ports",
                "each colour needs its own port, got \(ports.sorted { $0.key < $1.key })")
        }
        let publish =
            map["publish"].flatMap {
                reader.choice($0, "deploy.swarm.publish", among: SwarmSpec.PublishMode.allCases.map(\.rawValue))
            }
            .flatMap(SwarmSpec.PublishMode.init(rawValue:)) ?? .auto
        var maxPerNode = map["maxReplicasPerNode"].flatMap {
            reader.int($0, "deploy.swarm.maxReplicasPerNode", range: 1...100)
        }
        if publish != .ingress, let value = maxPerNode, value > 1 {
            reader.report(
                map["maxReplicasPerNode"], "deploy.swarm.maxReplicasPerNode",
                "host-mode publishing allows one task per node and port, got \(value) (set publish: ingress to use the routing mesh)"
            )
        }
        if publish == .host { maxPerNode = 1 }
        let spec = SwarmSpec(
            host: host, engines: engines, certificates: certificates, insecure: insecure,
            image: map["image"].flatMap { reader.nonEmptyString($0, "deploy.swarm.image") }
                ?? "localhost/recengine:latest",
            replicas: replicas, minHealthyReplicas: min(minHealthy, replicas), ports: ports,
            constraints: map["constraints"].flatMap { reader.stringList($0, "deploy.swarm.constraints") } ?? [],
            spread: map["spread"].flatMap { reader.stringList($0, "deploy.swarm.spread") } ?? [],
            maxReplicasPerNode: maxPerNode, publish: publish)
        for engine in [host] + (engines ?? []).map(Optional.some)
        where engine == nil || engine?.hasPrefix("tcp://") == true {
            do {
                _ = try DockerEngine.configured(
                    host: engine, certificates: certificates, insecure: insecure ?? false,
                    environment: reader.environment)
            } catch let error as EngineClientError {
                reader.report(
                    map["host"] ?? map["engines"] ?? node, "deploy.swarm",
                    error.message + (error.hint.map { " (\($0))" } ?? ""))
            } catch {}
        }
        return spec
    }

    private func decodeTraffic(_ node: Node, pipelineName: String) -> TrafficSpec? {
        guard
            let map = reader.mapping(
                node, "traffic",
                allowed: ["nginx", "mode", "steps", "wait", "stopOld", "drain", "interleave", "shadow"])
        else { return nil }
        var spec = TrafficSpec(
            nginxConfig: resolve("nginx/generated/\(pipelineName).conf"), listen: 8080, mode: .sticky,
            steps: [25, 50, 75, 100],
            wait: .seconds(3600), stopOld: false, drain: .seconds(30))
        if let nginx = map["nginx"],
            let nginxMap = reader.mapping(nginx, "traffic.nginx", allowed: ["config", "listen"])
        {
            if let config = nginxMap["config"].flatMap({ reader.nonEmptyString($0, "traffic.nginx.config") }) {
                spec.nginxConfig = resolve(config)
            }
            if let listen = nginxMap["listen"].flatMap({ reader.int($0, "traffic.nginx.listen", range: 1...65535) }) {
                spec.listen = listen
            }
        }
        if let mode = map["mode"].flatMap({
            reader.choice($0, "traffic.mode", among: TrafficSpec.Mode.allCases.map(\.rawValue))
        }) {
            spec.mode = TrafficSpec.Mode(rawValue: mode) ?? .sticky
        }
        if let node = map["steps"], let items = reader.sequence(node, "traffic.steps") {
            let steps = items.enumerated().map { reader.int($1, "traffic.steps[\($0)]", range: 0...Int.max) }
            if !steps.contains(where: { $0 == nil }) {
                let values = steps.compactMap { $0 }
                if values.isEmpty {
                    reader.report(node, "traffic.steps", "give at least one step, e.g. [25, 50, 75, 100]")
                } else if let over = values.enumerated().first(where: {
                    $1 > 100 || $1 < 1 && !($0 == 0 && $1 == 0 && map["interleave"] != nil)
                })?.element {
                    let zero = over == 0 ? "; a first step of 0 is the interleaving step, with traffic.interleave" : ""
                    reader.report(
                        node, "traffic.steps",
                        "weight \(over) is outside 1...100 (percent of users on the new colour)\(zero)")
                } else if zip(values, values.dropFirst()).contains(where: { $0 >= $1 }) {
                    reader.report(node, "traffic.steps", "weights must increase step by step, got \(values)")
                } else if values.last != 100 {
                    reader.report(
                        node, "traffic.steps",
                        "the last step must be 100 so that the release ends on the new colour, got \(values)")
                } else {
                    spec.steps = values
                }
            }
        }
        if let wait = map["wait"].flatMap({ reader.duration($0, "traffic.wait") }) { spec.wait = wait }
        if let stopOld = map["stopOld"].flatMap({ reader.bool($0, "traffic.stopOld") }) { spec.stopOld = stopOld }
        if let drain = map["drain"].flatMap({ reader.duration($0, "traffic.drain") }) { spec.drain = drain }
        spec.interleave = map["interleave"].flatMap(decodeInterleave)
        // The shadow stage runs before step 1 with its own split: it goes with interleaving steps.
        spec.shadow = map["shadow"].flatMap(decodeShadow)
        return spec
    }

    private func decodeAnalysis(_ node: Node) -> AnalysisSpec? {
        guard let map = reader.mapping(node, "analysis", allowed: ["prometheus", "gates", "judge"]) else { return nil }
        var prometheus: String?
        if let node = reader.required(map, "prometheus", "analysis", in: node),
            let url = reader.nonEmptyString(node, "analysis.prometheus")
        {
            if (url.hasPrefix("http://") || url.hasPrefix("https://")) && URL(string: url)?.host != nil {
                prometheus = url.hasSuffix("/") ? String(url.dropLast()) : url
            } else {
                reader.report(node, "analysis.prometheus", "\"\(echoed(url))\" is not an http:// or https:// URL")
            }
        }
        var gates: [PromQLGate] = []
        if let gatesNode = map["gates"], let items = reader.sequence(gatesNode, "analysis.gates") {
            for (index, item) in items.enumerated() {
                guard let gate = decodePromQLGate(item, index: index) else { continue }
                if gates.contains(where: { $0.name == gate.name }) {
                    reader.report(item, "analysis.gates[\(index)].name", "duplicate gate name \"\(gate.name)\"")
                } else {
                    gates.append(gate)
                }
            }
        }
        let judge = map["judge"].flatMap(decodeJudge)
        guard let prometheus else { return nil }
        return AnalysisSpec(prometheus: prometheus, gates: gates, judge: judge)
    }

    private func decodeJudge(_ node: Node) -> JudgeSpec? {
        let path = "analysis.judge"
        guard
            let map = reader.mapping(
                node, path,
                allowed: [
                    "metrics", "confidence", "interval", "maxWait", "onInconclusive", "marginal", "pass",
                    "expectedRate", "rateQuery", "sampleRatio",
                    "allowUndecidedCritical", "usersPerMinute",
                ])
        else { return nil }
        var spec = JudgeSpec(
            metrics: [], confidence: 0.95, interval: .seconds(2), maxWait: .seconds(60), onInconclusive: .fail,
            marginal: 50, pass: 75, expectedRate: nil)
        if let value = map["confidence"].flatMap({ reader.double($0, "\(path).confidence") }) {
            if value >= 0.5 && value < 1 {
                spec.confidence = value
            } else {
                reader.report(map["confidence"], "\(path).confidence", "must be from 0.5 to below 1, e.g. 0.95")
            }
        }
        if let value = map["interval"].flatMap({ reader.duration($0, "\(path).interval") }) {
            if value.milliseconds >= 100 {
                spec.interval = value
            } else {
                reader.report(map["interval"], "\(path).interval", "must be at least 100ms")
            }
        }
        if let value = map["maxWait"].flatMap({ reader.duration($0, "\(path).maxWait") }) { spec.maxWait = value }
        if let value = map["onInconclusive"].flatMap({
            reader.choice($0, "\(path).onInconclusive", among: JudgeSpec.Inconclusive.allCases.map(\.rawValue))
        }) {
            spec.onInconclusive = JudgeSpec.Inconclusive(rawValue: value) ?? .fail
        }
        for (key, keyPath) in [("marginal", \JudgeSpec.marginal), ("pass", \JudgeSpec.pass)] {
            guard let value = map[key].flatMap({ reader.double($0, "\(path).\(key)") }) else { continue }
            if (0...100).contains(value) {
                spec[keyPath: keyPath] = value
            } else {
                reader.report(map[key], "\(path).\(key)", "a score from 0 to 100")
            }
        }
        if spec.marginal > spec.pass {
            reader.report(
                node, path, "marginal \(formatNumber(spec.marginal)) is above pass \(formatNumber(spec.pass))")
        }
        if let value = map["expectedRate"].flatMap({ reader.double($0, "\(path).expectedRate") }) {
            if value > 0 && value <= 1e9 {
                spec.expectedRate = value
            } else {
                reader.report(
                    map["expectedRate"], "\(path).expectedRate", "requests per second, above 0 and at most 1e9")
            }
        }
        spec.rateQuery = map["rateQuery"].flatMap { reader.nonEmptyString($0, "\(path).rateQuery") }
        spec.allowUndecidedCritical = map["allowUndecidedCritical"].flatMap {
            reader.bool($0, "\(path).allowUndecidedCritical")
        }
        if let value = map["usersPerMinute"].flatMap({ reader.double($0, "\(path).usersPerMinute") }) {
            if value > 0 && value <= 1e9 {
                spec.usersPerMinute = value
            } else {
                reader.report(
                    map["usersPerMinute"], "\(path).usersPerMinute", "users per minute, above 0 and at most 1e9")
            }
        }
        spec.sampleRatio = map["sampleRatio"].flatMap(decodeSampleRatio)
        guard let metricsNode = reader.required(map, "metrics", path, in: node),
            let items = reader.sequence(metricsNode, "\(path).metrics")
        else { return nil }
        if items.isEmpty { reader.report(metricsNode, "\(path).metrics", "the judge needs at least one metric") }
        for (index, item) in items.enumerated() {
            guard let metric = decodeJudgeMetric(item, index: index) else { continue }
            if spec.metrics.contains(where: { $0.name == metric.name }) {
                reader.report(item, "\(path).metrics[\(index)].name", "duplicate metric name \"\(metric.name)\"")
            } else {
                spec.metrics.append(metric)
            }
        }
        return spec
    }

    /// `sampleRatio: {users: QUERY, requests: QUERY, units: LABEL, pValue: 0.001}`.
    private func decodeSampleRatio(_ node: Node) -> JudgeSpec.SampleRatio? {
        let path = "analysis.judge.sampleRatio"
        guard let map = reader.mapping(node, path, allowed: ["users", "requests", "units", "pValue", "settle"]) else {
            return nil
        }
        var spec = JudgeSpec.SampleRatio()
        for (key, keyPath) in [("users", \JudgeSpec.SampleRatio.users), ("requests", \JudgeSpec.SampleRatio.requests)] {
            guard let text = map[key].flatMap({ reader.nonEmptyString($0, "\(path).\(key)") }) else { continue }
            if !text.contains("{{color}}") {
                reader.report(
                    map[key], "\(path).\(key)",
                    "the query must select the colour with {{color}} (it is asked once per colour)")
            }
            spec[keyPath: keyPath] = text
        }
        if spec.users == nil && spec.requests == nil {
            reader.report(
                node, path,
                "the sample ratio check needs users: QUERY or requests: QUERY (a counter per colour with {{color}})")
        }
        spec.units = map["units"].flatMap { validName($0, "\(path).units") }
        spec.settle = map["settle"].flatMap { reader.duration($0, "\(path).settle") }
        if let value = map["pValue"].flatMap({ reader.double($0, "\(path).pValue") }) {
            if value > 0 && value <= 0.05 {
                spec.pValue = value
            } else {
                reader.report(
                    map["pValue"], "\(path).pValue",
                    "a p-value above 0 and at most 0.05, e.g. 0.001 (checked at every look, so keep it small)")
            }
        }
        return spec
    }

    private func decodeJudgeMetric(_ node: Node, index: Int) -> JudgeSpec.Metric? {
        let fallback = "analysis.judge.metrics[\(index)]"
        guard
            let map = reader.mapping(
                node, fallback,
                allowed: [
                    "name", "proportion", "histogram", "interleaving", "quantiles", "bad", "effect", "baseline",
                    "critical", "weight", "onNoData",
                    "minTrials", "trialsPerRequest", "cuped", "floor",
                ])
        else { return nil }
        let name = reader.required(map, "name", fallback, in: node).flatMap { validName($0, "\(fallback).name") }
        let path = name.map { "analysis.judge.metrics.\($0)" } ?? fallback
        func query(_ node: Node?, _ key: String) -> String? {
            guard let text = reader.nonEmptyString(node, key) else { return nil }
            if !text.contains("{{color}}") {
                reader.report(
                    node, key, "the query must select the colour with {{color}} (it is asked once per colour)")
            }
            return text
        }
        var kind: JudgeSpec.Metric.Kind?
        var units: String?
        switch (map["proportion"], map["histogram"]) {
        case (let proportion?, nil):
            if let parts = reader.mapping(proportion, "\(path).proportion", allowed: ["successes", "trials", "units"]),
                let successes = reader.required(parts, "successes", "\(path).proportion", in: proportion).flatMap({
                    query($0, "\(path).proportion.successes")
                }),
                let trials = reader.required(parts, "trials", "\(path).proportion", in: proportion).flatMap({
                    query($0, "\(path).proportion.trials")
                })
            {
                kind = .proportion(successes: successes, trials: trials)
                units = parts["units"].flatMap { validName($0, "\(path).proportion.units") }
            }
            if map["quantiles"] != nil {
                reader.report(map["quantiles"], "\(path).quantiles", "quantiles go with histogram:")
            }
        case (nil, let histogram?):
            var quantiles = [0.5, 0.95, 0.99]
            if let node = map["quantiles"], let list = reader.sequence(node, "\(path).quantiles") {
                let values = list.enumerated().compactMap { reader.double($1, "\(path).quantiles[\($0)]") }
                if values.count == list.count {
                    if values.isEmpty || values.contains(where: { $0 <= 0 || $0 >= 1 }) {
                        reader.report(
                            node, "\(path).quantiles", "quantiles lie strictly between 0 and 1, e.g. [0.5, 0.95, 0.99]")
                    } else {
                        quantiles = values
                    }
                }
            }
            if let buckets = query(histogram, "\(path).histogram") {
                kind = .histogram(buckets: buckets, quantiles: quantiles)
            }
        case (nil, nil):
            if let interleaving = map["interleaving"] {
                // No options yet: a mapping, so that some can come.
                if reader.mapping(interleaving, "\(path).interleaving", allowed: []) != nil { kind = .interleaving }
                for key in ["quantiles", "baseline", "trialsPerRequest"] where map[key] != nil {
                    reader.report(
                        map[key], "\(path).\(key)",
                        "\(key) does not apply to interleaving (users who preferred a colour)")
                }
            } else {
                reader.report(
                    node, path,
                    "a judge metric needs proportion: {successes, trials} or histogram: QUERY (or interleaving: {})")
            }
        case (_?, _?):
            reader.report(node, path, "proportion: and histogram: exclude each other")
        }
        if map["interleaving"] != nil && (map["proportion"] != nil || map["histogram"] != nil) {
            reader.report(
                map["interleaving"], "\(path).interleaving",
                "interleaving: and \(map["proportion"] != nil ? "proportion:" : "histogram:") exclude each other")
        }
        let bad = reader.required(map, "bad", path, in: node).flatMap {
            reader.choice($0, "\(path).bad", among: JudgeSpec.Metric.Direction.allCases.map(\.rawValue)).flatMap(
                JudgeSpec.Metric.Direction.init)
        }
        // effect: 0.1 (relative to live) or effect: {absolute: 0.02} / {relative: 0.1}.
        var effect = 0.1
        var absolute = false
        if let node = map["effect"] {
            var value: Double?
            if case .mapping = node,
                let parts = reader.mapping(node, "\(path).effect", allowed: ["relative", "absolute"])
            {
                if parts.count != 1 { reader.report(node, "\(path).effect", "give one of relative: or absolute:") }
                absolute = parts["absolute"] != nil
                value = (parts["absolute"] ?? parts["relative"]).flatMap { reader.double($0, "\(path).effect") }
            } else {
                value = reader.double(node, "\(path).effect")
            }
            if let value {
                if value > 0 && value <= (absolute ? 1 : 10) {
                    effect = value
                } else {
                    reader.report(
                        node, "\(path).effect",
                        absolute
                            ? "an absolute change above 0 and at most 1"
                            : "a relative change above 0, e.g. 0.1 for 10 %")
                }
            }
        }
        var baseline: Double?
        if let value = map["baseline"].flatMap({ reader.double($0, "\(path).baseline") }) {
            if value > 0 && value < 1 {
                baseline = value
            } else {
                reader.report(map["baseline"], "\(path).baseline", "an expected rate strictly between 0 and 1")
            }
        }
        let critical = map["critical"].flatMap { reader.bool($0, "\(path).critical") } ?? false
        var weight = 1.0
        if let value = map["weight"].flatMap({ reader.double($0, "\(path).weight") }) {
            if value > 0 && value <= 1e6 {
                weight = value
            } else {
                reader.report(map["weight"], "\(path).weight", "must be above 0 and at most 1e6")
            }
        }
        let onNoData =
            map["onNoData"].flatMap {
                reader.choice($0, "\(path).onNoData", among: JudgeSpec.Metric.NoData.allCases.map(\.rawValue)).flatMap(
                    JudgeSpec.Metric.NoData.init)
            } ?? .fail
        let minTrials = map["minTrials"].flatMap { reader.int($0, "\(path).minTrials", range: 1...1_000_000) } ?? 30
        var trialsPerRequest = 1.0
        if let value = map["trialsPerRequest"].flatMap({ reader.double($0, "\(path).trialsPerRequest") }) {
            if value > 0 && value <= 1e6 {
                trialsPerRequest = value
            } else {
                reader.report(map["trialsPerRequest"], "\(path).trialsPerRequest", "must be above 0 and at most 1e6")
            }
        }
        var cuped: PipelineDuration?
        if let node = map["cuped"], let window = reader.duration(node, "\(path).cuped") {
            if units == nil {
                reader.report(
                    node, "\(path).cuped",
                    "CUPED needs proportion.units: the groups of users whose engagement before the step is the covariate"
                )
            } else if window.milliseconds < 1000 {
                reader.report(node, "\(path).cuped", "the window before the step must be at least 1s, e.g. 10m")
            } else {
                cuped = window
            }
        }
        // A histogram's floor: the smallest slowdown that counts (seconds for latency).
        var floor: Double?
        if case .histogram? = kind { floor = JudgeSpec.Metric.defaultFloor }
        if let node = map["floor"] {
            if map["histogram"] == nil {
                reader.report(
                    node, "\(path).floor",
                    "floor goes with histogram: (the smallest change of a quantile that counts, e.g. 0.005 for 5 ms)")
            } else if let value = reader.double(node, "\(path).floor") {
                if value >= 0 && value <= 1e6 {
                    floor = value
                } else {
                    reader.report(
                        node, "\(path).floor",
                        "the smallest change that counts, in the histogram's unit (seconds for latency): from 0 to 1e6, e.g. 0.005"
                    )
                }
            }
        }
        guard let name, let kind, let bad else { return nil }
        return JudgeSpec.Metric(
            name: name, kind: kind, bad: bad, effect: effect, absolute: absolute, baseline: baseline,
            critical: critical, weight: weight, onNoData: onNoData,
            minTrials: minTrials, trialsPerRequest: trialsPerRequest, units: units, cuped: cuped, floor: floor)
    }

    private func decodePromQLGate(_ node: Node, index: Int) -> PromQLGate? {
        let fallback = "analysis.gates[\(index)]"
        guard
            let map = reader.mapping(
                node, fallback,
                allowed: [
                    "name", "query", "min", "max", "interval", "count", "initialDelay", "failureLimit",
                    "consecutiveErrorLimit", "onNoData", "history",
                ])
        else { return nil }
        let gateName = reader.required(map, "name", fallback, in: node).flatMap { validName($0, "\(fallback).name") }
        let path = gateName.map { "analysis.gates.\($0)" } ?? fallback
        let query = reader.required(map, "query", path, in: node).flatMap { reader.nonEmptyString($0, "\(path).query") }
        if let query,
            let unknown = query.ranges(of: "{{").compactMap({ range -> String? in
                guard let close = query[range.upperBound...].range(of: "}}") else { return "{{" }
                let placeholder = String(query[range.upperBound..<close.lowerBound])
                return ["color", "live", "release"].contains(placeholder) ? nil : placeholder
            }).first
        {
            reader.report(
                map["query"], "\(path).query",
                "unknown placeholder {{\(echoed(unknown))}}: use {{color}}, {{live}} or {{release}}")
        }
        let min = map["min"].flatMap { reader.double($0, "\(path).min") }
        let max = map["max"].flatMap { reader.double($0, "\(path).max") }
        let history = map["history"].flatMap { decodeHistoryBound($0, path: "\(path).history") }
        if map["min"] == nil && map["max"] == nil && map["history"] == nil {
            reader.report(node, path, "a gate needs min:, max:, history: or several")
        }
        if let min, let max, min > max {
            reader.report(node, path, "min \(formatNumber(min)) is above max \(formatNumber(max))")
        }
        let interval = map["interval"].flatMap { reader.duration($0, "\(path).interval") } ?? .seconds(30)
        let count = map["count"].flatMap { reader.int($0, "\(path).count", range: 1...1000) } ?? 1
        let initialDelay = map["initialDelay"].flatMap { reader.duration($0, "\(path).initialDelay") } ?? .seconds(0)
        let failureLimit = map["failureLimit"].flatMap { reader.int($0, "\(path).failureLimit", range: 0...1000) } ?? 0
        let errorLimit =
            map["consecutiveErrorLimit"].flatMap { reader.int($0, "\(path).consecutiveErrorLimit", range: 0...1000) }
            ?? 4
        let onNoData =
            map["onNoData"].flatMap {
                reader.choice($0, "\(path).onNoData", among: PromQLGate.NoDataPolicy.allCases.map(\.rawValue)).flatMap(
                    PromQLGate.NoDataPolicy.init)
            } ?? .fail
        guard let gateName, let query else { return nil }
        var gate = PromQLGate(
            name: gateName, query: query, min: min, max: max, interval: interval, count: count,
            initialDelay: initialDelay,
            failureLimit: failureLimit, consecutiveErrorLimit: errorLimit, onNoData: onNoData)
        gate.history = history
        return gate
    }

    private func decodeRollback(_ node: Node?) -> RollbackSpec {
        var spec = RollbackSpec(automatic: true, stopNew: true)
        guard let node, let map = reader.mapping(node, "rollback", allowed: ["automatic", "stopNew"]) else {
            return spec
        }
        if let value = map["automatic"].flatMap({ reader.bool($0, "rollback.automatic") }) { spec.automatic = value }
        if let value = map["stopNew"].flatMap({ reader.bool($0, "rollback.stopNew") }) { spec.stopNew = value }
        return spec
    }

    private func decodeHooks(_ node: Node?) -> HooksSpec {
        var spec = HooksSpec()
        guard let node,
            let map = reader.mapping(node, "hooks", allowed: ["preRollout", "duringStep", "postRollout", "onRollback"])
        else {
            return spec
        }
        func commands(_ key: String) -> [[String]] {
            guard let items = reader.sequence(map[key], "hooks.\(key)") else { return [] }
            return items.enumerated().compactMap { index, item in
                let path = "hooks.\(key)[\(index)]"
                if case .scalar = item {
                    reader.report(
                        item, path,
                        "a hook is an argument vector, e.g. [curl, -fsS, http://localhost/]; shell strings are never run"
                    )
                    return nil
                }
                guard let argv = reader.stringList(item, path) else { return nil }
                if argv.isEmpty { reader.report(item, path, "the argument vector is empty") }
                return argv.isEmpty ? nil : argv
            }
        }
        spec.preRollout = commands("preRollout")
        spec.duringStep = commands("duringStep")
        spec.postRollout = commands("postRollout")
        spec.onRollback = commands("onRollback")
        return spec
    }

    /// A colour names upstreams and variables in nginx's configuration, containers, files and
    /// Prometheus labels: only what all of them take.
    static func isColorName(_ text: String) -> Bool {
        guard let first = text.first, first.isASCII, first.isLetter, text.count <= 32 else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }
}
