import EngineAPI
import Foundation
import PipelineSchema
import RecEngineContract
import StrictYAML
import TestSupport
import Testing

/// The invalid-pipeline table: each case is a file whose line marked `# <-` carries the problem.
@Suite struct PipelineValidationTests {
    static let header = "version: 1\nname: demo\n"
    static let train = """
        stages:
          - name: train
            uses: train
            with: {ratings: r.csv, model: m}

        """
    static let evaluate = """
          - name: evaluate
            uses: evaluate
            with: {model: m, ratings: t.csv}

        """
    static let deploy = "deploy: {runtime: process}\n"

    struct Case: CustomTestStringConvertible, Sendable {
        var yaml: String
        var message: String
        var testDescription: String { message }
    }

    static let cases: [Case] = [
        Case(
            yaml: header
                + "stages:\n  - name: x\n    uses: train\n    with: {ratings: r.csv, model: m}\n    gate:\n      train_rmse: {history: {last: 3}} # <-\n",
            message: "give maxDrop: (a metric that must not fall, e.g. ndcg_at_k) or maxRise:"),
        Case(
            yaml: header
                + "stages:\n  - name: x\n    uses: train\n    with: {ratings: r.csv, model: m}\n    gate:\n      train_rmse: {history: {maxRise: 20}} # <-\n",
            message: "a fraction of the reference from 0 to 10 (0.02: 2 %)"),
        Case(
            yaml: header
                + "stages:\n  - name: x\n    uses: train\n    with: {ratings: r.csv, model: m}\n    gate:\n      train_rmse: {history: {quantile: 2, maxRise: 0.1}} # <-\n",
            message: "a quantile is from 0 to 1 (0.5: the median)"),
        Case(yaml: "version: 2 # <-\nname: demo\n" + train, message: "version 2 is not supported"),
        Case(yaml: "name: demo # <-\n" + train, message: "missing required key \"version\""),
        Case(yaml: header + "verison: 1 # <-\n" + train, message: "unknown key \"verison\": did you mean \"version\"?"),
        Case(yaml: "version: 1\nname: my demo # <-\n" + train, message: "must be at most 63"),
        Case(yaml: "version: one # <-\nname: demo\n" + train, message: "expected a whole number, got \"one\""),
        Case(yaml: header + "stages: [] # <-\n", message: "a pipeline needs at least one stage"),
        Case(yaml: header + "stages:\n  - name: x # <-\n    env: {A: b}\n", message: "a stage needs uses:"),
        Case(
            yaml: header + "stages:\n  - name: x # <-\n    uses: train\n    run: [true]\n",
            message: "either uses: (a built-in) or run:"),
        Case(yaml: header + "stages:\n  - name: x\n    uses: trian # <-\n", message: "did you mean \"train\"?"),
        Case(
            yaml: header + "stages:\n  - name: x\n    uses: train\n    with: {ratings: r.csv} # <-\n",
            message: "missing required parameter \"model\""),
        Case(
            yaml: header
                + "stages:\n  - name: x\n    uses: train\n    with:\n      ratings: r.csv\n      model: m\n      factor: 10 # <-\n",
            message: "did you mean \"factors\"?"),
        Case(
            yaml: header
                + "stages:\n  - name: x\n    uses: train\n    with:\n      ratings: r.csv\n      model: m\n      factors: -1 # <-\n",
            message: "must be from 0 to 4096, got -1"),
        Case(
            yaml: header
                + "stages:\n  - name: x\n    uses: train\n    with:\n      ratings: r.csv\n      model: m\n      algorithm: bpr # <-\n",
            message: "svd, als"),
        Case(
            yaml: header
                + "stages:\n  - name: x\n    uses: train\n    with:\n      ratings: r.csv\n      model: m\n      watches: w.csv # <-\n",
            message: "watches is for algorithm: als"),
        Case(
            yaml: header
                + "stages:\n  - name: x\n    uses: train\n    with:\n      ratings: r.csv\n      model: m\n      algorithm: ease\n      alpha: 3 # <-\n",
            message: "alpha is for algorithm: als"),
        Case(
            yaml: header
                + "stages:\n  - name: x\n    uses: train\n    with:\n      ratings: r.csv\n      model: m\n      epochs: many # <-\n",
            message: "expected a whole number, got \"many\""),
        Case(
            yaml: header
                + "stages:\n  - name: x\n    uses: split\n    with:\n      ratings: r.csv\n      train: a\n      test: b\n      testSize: 1.5 # <-\n",
            message: "must be from 0.0001 to 0.9999"),
        Case(
            yaml: header + "stages:\n  - name: x\n    run: python3 train.py # <-\n",
            message: "shell strings are never run"),
        Case(yaml: header + "stages:\n  - name: x\n    run: [] # <-\n", message: "the argument vector is empty"),
        Case(
            yaml: header + train + "  - name: train # <-\n    run: [true]\n", message: "duplicate stage name \"train\""),
        Case(
            yaml: header + "stages:\n  - name: x\n    run: [true]\n    timeout: 5 minutes # <-\n",
            message: "\"5 minutes\" is not a duration"),
        Case(
            yaml: header + "stages:\n  - name: x\n    run: [true]\n    retries: 11 # <-\n",
            message: "must be from 0 to 10, got 11"),
        Case(
            yaml: header + train + evaluate + "    gate:\n      rsme: {max: 1} # <-\n",
            message: "reports no metric \"rsme\": did you mean \"rmse\"?"),
        Case(
            yaml: header + train + evaluate + "    gate:\n      rmse: {min: 2, max: 1} # <-\n",
            message: "min 2 is above max 1"),
        Case(
            yaml: header + train + evaluate + "    gate:\n      rmse: {} # <-\n",
            message: "give min:, max:, history: or several"),
        Case(
            yaml: header + "stages:\n  - name: x\n    run: [true]\n    gate:\n      loss: {max: 1} # <-\n",
            message: "add metrics: FILE"),
        Case(
            yaml: header
                + "stages:\n  - name: x\n    uses: train\n    with: {ratings: r, model: m}\n    metrics: m.json # <-\n",
            message: "metrics: is for run: stages"),
        Case(
            yaml: header + "stages:\n  - name: x\n    run: [true]\n    with: {a: 1} # <-\n",
            message: "with: gives parameters to built-in stages"),
        Case(
            yaml: header + "stages:\n  - name: x\n    run: [true]\n    env: [A] # <-\n",
            message: "expected a mapping of names to strings"),
        Case(
            yaml: header + train + deploy + "traffic:\n  steps: [50, 25, 100] # <-\n", message: "weights must increase"),
        Case(
            yaml: header + train + deploy + "traffic:\n  steps: [25, 150] # <-\n",
            message: "weight 150 is outside 1...100"),
        Case(
            yaml: header + train + deploy + "traffic:\n  steps: [25, 50] # <-\n", message: "the last step must be 100"),
        Case(yaml: header + train + deploy + "traffic:\n  wait: soon # <-\n", message: "\"soon\" is not a duration"),
        Case(yaml: header + train + deploy + "traffic:\n  mode: stiky # <-\n", message: "did you mean \"sticky\"?"),
        Case(
            yaml: header + train + deploy + "traffic:\n  nginx: {listen: 70000} # <-\n",
            message: "must be from 1 to 65535"),
        Case(yaml: header + train + "traffic:\n  wait: 1m # <-\n", message: "traffic needs a deploy section"),
        Case(yaml: header + train + "deploy:\n  colors: [blue] # <-\n", message: "exactly two different colours"),
        Case(
            yaml: header + train + "deploy:\n  runtime: k8s # <-\n",
            message: "\"k8s\" is not one of process, docker, swarm"),
        Case(yaml: header + train + "deploy:\n  runtime: swarm # <-\n", message: "runtime: swarm needs swarm:"),
        Case(
            yaml: header + train
                + "deploy:\n  runtime: swarm\n  swarm:\n    replicas: 2\n    minHealthyReplicas: 3 # <-\n",
            message: "is 3, more than the 2 replicas"),
        Case(
            yaml: header + train + "deploy:\n  runtime: swarm\n  swarm:\n    ports: {blue: 9000, green: 9000} # <-\n",
            message: "each colour needs its own port"),
        Case(
            yaml: header + train + "deploy:\n  runtime: swarm\n  swarm:\n    ports: {blue: 9000, red: 9001} # <-\n",
            message: "unknown key \"red\""),
        Case(
            yaml: header + train + "deploy:\n  runtime: swarm\n  swarm:\n    maxReplicasPerNode: 2 # <-\n",
            message: "host-mode publishing allows one task per node"),
        Case(
            yaml: header + train + "deploy:\n  runtime: swarm\n  swarm:\n    replicas: 33 # <-\n",
            message: "must be from 1 to 32"),
        Case(
            yaml: header + train + "deploy:\n  runtime: swarm\n  swarm:\n    publish: mesh # <-\n",
            message: "\"mesh\" is not one of host, ingress"),
        Case(
            yaml: header + train
                + "deploy:\n  runtime: swarm\n  swarm:\n    engines: [\"unix:///run/a.sock\", \"ssh://node2\"] # <-\n",
            message: "must be unix:///PATH or tcp://HOST:PORT"),
        Case(
            yaml: header + train + "deploy:\n  runtime: swarm\n  swarm:\n    host: tcp://10.1.2.3:2375 # <-\n",
            message: "refusing plain HTTP to the Docker engine at tcp://10.1.2.3:2375"),
        Case(
            yaml: header + train + "deploy:\n  health: {path: health} # <-\n",
            message: "must be a URL path starting with /"),
        Case(
            yaml: header + train + deploy + "traffic: {}\nanalysis:\n  prometheus: localhost:9090 # <-\n",
            message: "is not an http:// or https:// URL"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  gates:\n    - name: g # <-\n      query: up\n",
            message: "a gate needs min:, max:, history: or several"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  gates:\n    - name: g\n      query: up{c=\"{{colour}}\"} # <-\n      max: 1\n",
            message: "unknown placeholder {{colour}}"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  gates:\n    - name: g\n      query: up\n      max: 1\n      onNoData: ignore # <-\n",
            message: "\"ignore\" is not one of fail, pass, inconclusive"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  gates:\n    - name: g\n      query: up\n      max: 1\n      failureLimt: 2 # <-\n",
            message: "did you mean \"failureLimit\"?"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    metrics:\n      - name: e # <-\n        bad: decrease\n",
            message: "a judge metric needs proportion: {successes, trials} or histogram: QUERY"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    metrics:\n      - name: e\n        proportion:\n          successes: s # <-\n          trials: t{c=\"{{color}}\"}\n        bad: decrease\n",
            message: "the query must select the colour with {{color}}"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    metrics:\n      - name: e\n        histogram: b{c=\"{{color}}\"}\n        bad: worse # <-\n",
            message: "\"worse\" is not one of increase, decrease"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    confidence: 1.5 # <-\n    metrics:\n      - name: e\n        histogram: b{c=\"{{color}}\"}\n        bad: increase\n",
            message: "must be from 0.5 to below 1"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    metrics:\n      - name: e\n        histogram: b{c=\"{{color}}\"}\n        quantiles: [0.5, 1.2] # <-\n        bad: increase\n",
            message: "quantiles lie strictly between 0 and 1"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    metrics:\n      - name: e\n        histogram: b{c=\"{{color}}\"}\n        bad: increase\n        effect: {absolute: 0.02, relative: 0.1} # <-\n",
            message: "give one of relative: or absolute:"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    metrics:\n      - name: e\n        histogram: b{c=\"{{color}}\"}\n        bad: increase\n        floor: -0.001 # <-\n",
            message: "from 0 to 1e6, e.g. 0.005"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    metrics:\n      - name: e\n        histogram: b{c=\"{{color}}\"}\n        bad: increase\n        floor: 5ms # <-\n",
            message: "expected a number, got \"5ms\""),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    metrics:\n      - name: e\n        proportion:\n          successes: s{c=\"{{color}}\"}\n          trials: t{c=\"{{color}}\"}\n        bad: decrease\n        floor: 0.005 # <-\n",
            message: "floor goes with histogram:"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    marginal: 80 # <-\n    pass: 60\n    metrics:\n      - name: e\n        histogram: b{c=\"{{color}}\"}\n        bad: increase\n",
            message: "marginal 80 is above pass 60"),
        Case(
            yaml: header
                + "stages:\n  - name: s\n    uses: split\n    with: {ratings: r.csv, train: a.csv, test: b.csv, lastN: 3} # <-\n",
            message: "lastN goes with mode: temporal"),
        Case(
            yaml: header
                + "stages:\n  - name: s\n    uses: split\n    with: {ratings: r.csv, train: a.csv, test: b.csv, mode: temporal, futureShare: 0.1} # <-\n",
            message: "futureShare and future go together"),

        Case(
            yaml: header + "history: ${NOT_SET_ANYWHERE} # <-\n" + train,
            message: "variable ${NOT_SET_ANYWHERE} is not set"),
        Case(yaml: header + "history: ${BROKEN # <-\n" + train, message: "unterminated ${"),
        Case(yaml: header + "stages:\n  - name: x\n   uses: train # <-\n", message: "YAML syntax"),
        Case(yaml: "version: 1\nname: demo # <-\nname: again\n" + train, message: "duplicate keys name"),
        Case(
            yaml: header + train + "hooks:\n  preRollout:\n    - curl http://x # <-\n",
            message: "a hook is an argument vector"),
        Case(yaml: header + train + "rollback:\n  automatic: sometimes # <-\n", message: "expected true or false"),
        // A tune stage: its space, strategy and protocol, and the train stage that reads its choice.
        Case(
            yaml: header
                + "stages:\n  - name: t\n    uses: tune\n    with:\n      ratings: r.csv\n      output: c.json\n      algorithm: ease\n      space: reg=1,a # <-\n",
            message: "the search space's values of reg must be numbers"),
        Case(
            yaml: header
                + "stages:\n  - name: t\n    uses: tune\n    with:\n      ratings: r.csv\n      output: c.json\n      algorithm: ease\n      space: factors=8,16 # <-\n",
            message: "with NAME one of reg for ease"),
        Case(
            yaml: header
                + "stages:\n  - name: t\n    uses: tune\n    with:\n      ratings: r.csv\n      output: c.json\n      algorithm: als\n      space: factors=8.5 # <-\n",
            message: "factors takes whole numbers"),
        Case(
            yaml: header
                + "stages:\n  - name: t\n    uses: tune\n    with: {ratings: r.csv, output: c.json, space: reg=1} # <-\n",
            message: "missing required parameter \"algorithm\" of the tune stage"),
        Case(
            yaml: header
                + "stages:\n  - name: t\n    uses: tune\n    with:\n      ratings: r.csv\n      output: c.json\n      algorithm: ease\n      space: reg=1,2\n      samples: 2 # <-\n",
            message: "samples goes with strategy: random"),
        Case(
            yaml: header
                + "stages:\n  - name: t\n    uses: tune\n    with:\n      ratings: r.csv\n      output: c.json\n      algorithm: ease\n      space: reg=1,2\n      strategy: random # <-\n",
            message: "strategy: random needs samples: N"),
        Case(
            yaml: header
                + "stages:\n  - name: t\n    uses: tune\n    with:\n      ratings: r.csv\n      output: c.json\n      algorithm: ease\n      space: reg=1,2\n      lastN: 5 # <-\n",
            message: "lastN goes with validation: temporal"),
        Case(
            yaml: header
                + "stages:\n  - name: t\n    uses: tune\n    with:\n      ratings: r.csv\n      output: c.json\n      algorithm: ease\n      space: reg=1,2\n      strategy: halving # <-\n",
            message: "successive halving trains for more epochs each round"),
        Case(
            yaml: header
                + "stages:\n  - name: t\n    uses: tune\n    with:\n      ratings: r.csv\n      output: c.json\n      algorithm: svd\n      space: reg=0.01,0.1;epochs=5,10 # <-\n      strategy: halving\n",
            message: "epochs is the one number of epochs"),
        Case(
            yaml: header
                + "stages:\n  - name: t\n    uses: tune\n    with: {ratings: r.csv, output: c.json, algorithm: svd, space: \"reg=0.01,0.1\", strategy: halving}\n  - name: x\n    uses: train\n    with:\n      ratings: r.csv\n      model: m\n      tuned: c.json\n      epochs: 20 # <-\n",
            message: "epochs is chosen by the tune stage \"t\""),
        Case(
            yaml: header
                + "stages:\n  - name: t\n    uses: tune\n    with:\n      ratings: r.csv\n      output: c.json\n      algorithm: ease\n      space: reg=1,2\n      metric: rmse # <-\n",
            message: "\"rmse\" is not one of ndcg_at_k"),
        Case(
            yaml: header
                + "stages:\n  - name: t\n    uses: tune\n    with: {ratings: r.csv, output: c.json, algorithm: ease, space: reg=1}\n    gate:\n      ndcg_at_k: {min: 0.1} # <-\n",
            message: "the tune stage reports no metric \"ndcg_at_k\""),
        Case(
            yaml: header
                + "stages:\n  - name: t\n    uses: tune\n    with: {ratings: r.csv, output: c.json, algorithm: ease, space: reg=1}\n  - name: x\n    uses: train\n    with:\n      ratings: r.csv\n      model: m\n      tuned: c.json\n      algorithm: als # <-\n",
            message: "the tune stage \"t\" tunes ease and this stage trains als"),
        Case(
            yaml: header
                + "stages:\n  - name: t\n    uses: tune\n    with: {ratings: r.csv, output: c.json, algorithm: svd, space: \"reg=0.01,0.1;lr=0.005\"}\n  - name: x\n    uses: train\n    with:\n      ratings: r.csv\n      model: m\n      tuned: c.json\n      lr: 0.01 # <-\n",
            message: "lr is chosen by the tune stage \"t\": leave it out here"),
        Case(
            yaml: header
                + "stages:\n  - name: x\n    uses: train\n    with:\n      ratings: r.csv\n      model: m\n      algorithm: ease\n      tuned: c.json # <-\n  - name: t\n    uses: tune\n    with: {ratings: r.csv, output: c.json, algorithm: ease, space: reg=1}\n",
            message: "the tune stage \"t\" writes"),

        // An explicit YAML tag is never read: refused where it stands, whatever it asks for.
        Case(yaml: "version: !!str 1 # <-\nname: demo\n" + train, message: "the YAML tag !!str is not read"),
        Case(
            yaml: header
                + "stages:\n  - name: x\n    uses: train\n    with:\n      ratings: r.csv\n      model: m\n      factors: !!int \"x\" # <-\n",
            message: "the YAML tag !!int is not read"),
        Case(
            yaml: header
                + "stages:\n  - name: x\n    uses: train\n    with:\n      ratings: r.csv\n      model: m\n      factors: !!int 8 # <-\n",
            message: "the YAML tag !!int is not read"),
        Case(yaml: "version: 1\nname: !custom demo # <-\n" + train, message: "the YAML tag !custom is not read"),
        Case(
            yaml: header + train + deploy + "traffic:\n  wait: !!float 60 # <-\n",
            message: "the YAML tag !!float is not read"),
        Case(
            yaml: header + train + "rollback:\n  automatic: !!bool yes # <-\n",
            message: "the YAML tag !!bool is not read"),
        Case(yaml: header + train + "history: !!null # <-\n", message: "the YAML tag !!null is not read"),
        Case(yaml: header + train + "history: !!binary aGVsbG8= # <-\n", message: "the YAML tag !!binary is not read"),
        Case(
            yaml: header + train + "history: !<tag:example.com,2000:file> h.jsonl # <-\n",
            message: "the YAML tag tag:example.com,2000:file is not read"),
        Case(
            yaml: header + train + deploy + "traffic:\n  steps: !!seq [25, 100] # <-\n",
            message: "the YAML tag !!seq is not read"),
        Case(
            yaml: header + train + deploy + "traffic: !!map # <-\n  wait: 1m\n",
            message: "the YAML tag !!map is not read"),
        Case(
            yaml: header + train + deploy + "traffic:\n  !custom wait: 1m # <-\n",
            message: "the YAML tag !custom is not read"),
        Case(
            yaml: header + train + deploy + "traffic:\n  steps: [25, !!str 100] # <-\n",
            message: "the YAML tag !!str is not read"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    allowUndecidedCritical: perhaps # <-\n    metrics:\n      - name: e\n        histogram: b{c=\"{{color}}\"}\n        bad: increase\n",
            message: "perhaps"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    usersPerMinute: 0 # <-\n    metrics:\n      - name: e\n        histogram: b{c=\"{{color}}\"}\n        bad: increase\n",
            message: "users per minute, above 0"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    sampleRatio: {units: user_bucket} # <-\n    metrics:\n      - name: e\n        histogram: b{c=\"{{color}}\"}\n        bad: increase\n",
            message: "the sample ratio check needs users: QUERY or requests: QUERY"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    sampleRatio:\n      users: sum(u) # <-\n    metrics:\n      - name: e\n        histogram: b{c=\"{{color}}\"}\n        bad: increase\n",
            message: "the query must select the colour with {{color}}"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    sampleRatio:\n      users: sum(u{c=\"{{color}}\"})\n      pValue: 0.5 # <-\n    metrics:\n      - name: e\n        histogram: b{c=\"{{color}}\"}\n        bad: increase\n",
            message: "a p-value above 0 and at most 0.05"),
        Case(
            yaml: header + train + deploy
                + "traffic: {}\nanalysis:\n  prometheus: http://p:9090\n  judge:\n    metrics:\n      - name: e\n        proportion: {successes: 's{c=\"{{color}}\"}', trials: 't{c=\"{{color}}\"}'}\n        bad: decrease\n        cuped: 10m # <-\n",
            message: "CUPED needs proportion.units"),
    ]

    @Test(arguments: cases)
    func invalidPipelineNamesFileLineAndProblem(_ testCase: Case) async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/pipeline.yml"
            try write(testCase.yaml, to: path)
            let expectedLine =
                try #require(
                    testCase.yaml.split(separator: "\n", omittingEmptySubsequences: false).firstIndex {
                        $0.contains("# <-")
                    }) + 1
            let error = #expect(throws: PipelineValidationError.self) {
                try PipelineLoader(environment: [:]).load(path)
            }
            let issue = try #require(
                error?.issues.first { $0.message.contains(testCase.message) }, "\(String(describing: error))")
            #expect(issue.file == path)
            #expect(issue.line == expectedLine, "\(issue)")
            #expect(issue.column >= 1)
            #expect(issue.description.hasPrefix("\(path):\(expectedLine):"))
        }
    }

    /// A latency histogram's floor: 5 ms unless the pipeline says otherwise (0 turns it off); a
    /// proportion has none.
    @Test(arguments: [("", 0.005), ("        floor: 0.02\n", 0.02), ("        floor: 0\n", 0)])
    func aHistogramsFloorDefaultsToFiveMilliseconds(line: String, expected: Double) async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/pipeline.yml"
            let judge = """
                traffic: {}
                analysis:
                  prometheus: http://p:9090
                  judge:
                    metrics:
                      - name: latency
                        histogram: b{c="{{color}}"}
                        bad: increase
                \(line)      - name: engagement
                        proportion:
                          successes: s{c="{{color}}"}
                          trials: t{c="{{color}}"}
                        bad: decrease

                """
            try write(Self.header + Self.train + Self.deploy + judge, to: path)
            let metrics = try #require(try PipelineLoader(environment: [:]).load(path).analysis?.judge?.metrics)
            #expect(metrics.first { $0.name == "latency" }?.floor == expected)
            #expect(metrics.first { $0.name == "engagement" }?.floor == nil)
        }
    }

    /// A quoted value is text, as an untagged one is: quoting is how a value is kept as written.
    @Test func quotedValuesAreReadByTheirKeysType() async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/pipeline.yml"
            try write(
                "version: \"1\"\nname: 'demo'\nstages:\n  - name: train\n    uses: train\n    with: {ratings: r.csv, model: m, factors: \"8\"}\n",
                to: path)
            let pipeline = try PipelineLoader(environment: [:]).load(path)
            guard case .builtin(.train(let parameters)) = pipeline.stages[0].action else {
                Issue.record("not a train stage: \(pipeline.stages[0].action)")
                return
            }
            #expect(parameters.factors == 8)
            #expect(pipeline.name == "demo")
        }
    }

    /// EASE's item-item matrix must fit the machine: `validate` reads a ratings file that is
    /// already there and refuses a catalogue one item too large, with the estimate and the limit.
    @Test func anEASECatalogueTooLargeForTheMachineIsRefusedAtValidation() async throws {
        try await withTemporaryDirectory { folder in
            let items = EASEMemory.largestCatalogue(limit: EASEMemory.limit) + 1
            var ratings = "user_id,movie_id,rating\n"
            for item in 0..<items { ratings += "u\(item % 5),m\(item),3\n" }
            try write(ratings, to: folder + "/r.csv")
            let path = folder + "/pipeline.yml"
            try write(
                Self.header
                    + "stages:\n  - name: x\n    uses: train\n    with:\n      ratings: r.csv\n      model: m\n      algorithm: ease\n",
                to: path)
            let error = #expect(throws: PipelineValidationError.self) {
                try PipelineLoader(environment: [:]).load(path)
            }
            let issue = try #require(error?.issues.first, "\(String(describing: error))")
            #expect(issue.line == 9, "\(issue)")
            #expect(issue.message.contains("EASE on \(items) items needs about"), "\(issue)")
            #expect(issue.message.contains("above this machine's limit of"), "\(issue)")
            // The same stage on a catalogue that fits validates.
            try write("user_id,movie_id,rating\nu,a,4\nv,b,5\n", to: folder + "/r.csv")
            _ = try PipelineLoader(environment: [:]).load(path)
        }
    }

    @Test func everyProblemIsReportedAtOnce() async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/pipeline.yml"
            try write(
                Self.header
                    + "stages:\n  - name: x\n    uses: train\n    with: {ratings: r, model: m, factors: -3}\n    timeout: later\n"
                    + Self.deploy + "traffic:\n  steps: [90, 10]\n", to: path)
            let error = #expect(throws: PipelineValidationError.self) {
                try PipelineLoader(environment: [:]).load(path)
            }
            #expect(error?.issues.map(\.line) == [6, 7, 10])
            #expect(error?.description.contains("the pipeline has 3 problems") == true)
        }
    }

    @Test func validPipelineResolvesDefaultsPathsAndVariables() async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/pipelines/p.yml"
            try write(
                """
                version: 1
                name: demo
                history: ${HISTORY:-../releases/h.jsonl}
                stages:
                  - name: train
                    uses: train
                    with: {ratings: "${DATA}/r.csv", model: ../models/m, epochs: "${EPOCHS:-7}"}
                    timeout: 1h30m
                  - name: report
                    run: [./report.sh, --price, $$5]
                    env: {MODE: "${MODE:-fast}"}
                deploy: {}
                traffic: {wait: 90s}
                """, to: path)
            let pipeline = try PipelineLoader(environment: ["DATA": "/data", "MODE": ""]).load(path)
            #expect(pipeline.history == folder + "/releases/h.jsonl")
            #expect(pipeline.stages[0].timeout == PipelineDuration("90m"))
            guard case .builtin(.train(let parameters)) = pipeline.stages[0].action else {
                Issue.record("train is a built-in")
                return
            }
            #expect(parameters.ratings == "/data/r.csv")
            #expect(parameters.model == folder + "/models/m")
            #expect(parameters.epochs == 7)
            #expect(parameters.factors == nil, "left out, factors is the algorithm's own default")
            #expect(parameters.algorithm == .svd)
            #expect(pipeline.stages[0].inputs == ["/data/r.csv"])
            #expect(pipeline.stages[0].outputs == [folder + "/models/m"])
            #expect(pipeline.stages[1].action == .command(["./report.sh", "--price", "$5"]))
            #expect(pipeline.stages[1].env == ["MODE": "fast"], "an empty variable takes the default, as in compose")
            #expect(pipeline.deploy?.colors == ["blue", "green"])
            #expect(pipeline.deploy?.model == folder + "/models/m", "the train stage's model is deployed by default")
            #expect(pipeline.traffic?.steps == [25, 50, 75, 100])
            #expect(pipeline.traffic?.wait == .seconds(90))
            #expect(pipeline.rollback.automatic)
        }
    }

    @Test(arguments: [
        ("90s", 90_000), ("5m", 300_000), ("1h", 3_600_000), ("1h30m", 5_400_000), ("250ms", 250), ("0s", 0),
    ])
    func durationsParse(text: String, milliseconds: Int64) {
        #expect(PipelineDuration(text)?.milliseconds == milliseconds)
        #expect(
            PipelineDuration(PipelineDuration(milliseconds: milliseconds).description)?.milliseconds == milliseconds)
    }

    @Test(arguments: ["", "90", "s", "1.5h", "-5s", "5 m", "1d"])
    func badDurationsAreRejected(text: String) {
        #expect(PipelineDuration(text) == nil)
    }
}
