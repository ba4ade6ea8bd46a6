using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraBridge.Models;
using LoraBridge.Python;
using LoraBridge.Tokenizers;

namespace LoraBridge.Engine;

/// <summary>
/// <c>lorabridge conformance embeddings</c>: scans an embeddings folder, plans every record's prompts as A1111 does
/// (<see cref="TextualInversionPlan"/>) and runs the encode calls on a text encoder, writing the candidate files of
/// ../shared/conformance/embeddings: <c>records.jsonl</c>, <c>db.json</c> and <c>cond/&lt;id&gt;.npz</c>.
/// Records are read for <c>id</c>, <c>prompt</c>, <c>negative_prompt</c> and <c>steps</c> only.
/// </summary>
public static class EmbeddingConformance
{
    /// <summary>Runs the records in <paramref name="recordsPath"/>; returns how many records were written.</summary>
    public static async Task<int> RunAsync(string recordsPath, string outDir, string embeddingsDir, string textEncoderWeights, string tokenizerDir,
        PythonBridge bridge, TextWriter log, CancellationToken ct)
    {
        var tokenizer = ClipTokenizer.FromDirectory(tokenizerDir);
        int width = await bridge.TextEncoderWidthAsync(Path.GetFullPath(textEncoderWeights), ct).ConfigureAwait(false);
        var db = await EmbeddingDatabase.LoadAsync([embeddingsDir], width, tokenizer, new PythonEmbeddingReader(bridge), ct: ct).ConfigureAwait(false);
        Directory.CreateDirectory(Path.Combine(outDir, "cond"));
        AtomicFile.Replace(Path.Combine(outDir, "db.json"), Encoding.UTF8.GetBytes(db.ToJson().ToJsonString()));

        var chunker = new PromptChunker(tokenizer, embeddings: db.Lookup);
        var planner = new A1111PromptPlanner();
        var output = new StringBuilder();
        int n = 0;
        foreach (var line in File.ReadLines(recordsPath))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            var r = JsonNode.Parse(line)!.AsObject();
            string id = r["id"]!.GetValue<string>();
            var plan = TextualInversionPlan.Create(r["prompt"]?.GetValue<string>() ?? "", r["negative_prompt"]?.GetValue<string>() ?? "",
                r["steps"]?.GetValue<int>() ?? 20, chunker, width, planner.Attention);
            var record = plan.ToRecordJson();
            record.Insert(0, "id", id);
            output.Append(record.ToJsonString()).Append('\n');

            var made = plan.Failed is null ? plan.Calls : plan.Calls.Take(plan.Calls.ToList().IndexOf(plan.Failed) + 1);
            var calls = new JsonArray(made.Select(c => (JsonNode)EncodeRequest(c.Chunks)).ToArray());
            var errors = JsonNode.Parse(await bridge.WriteEmbeddingConditioningAsync(Path.GetFullPath(textEncoderWeights),
                Path.GetFullPath(Path.Combine(outDir, "cond", id + ".npz")), calls.ToJsonString(), ct).ConfigureAwait(false))!.AsArray();
            // The C# plan predicts which call fails; Python's torch.cat is the judge. A disagreement is a bug to report.
            var predicted = made.Select(c => c.Error is not null).ToList();
            var actual = errors.Select(e => e is not null).ToList();
            if (!predicted.Take(actual.Count).SequenceEqual(actual) || actual.Count != predicted.Count)
                log.WriteLine($"{id}: encode errors differ from the plan: predicted [{string.Join(",", predicted)}], torch [{string.Join(",", errors.Select(e => e?.ToString() ?? "ok"))}]");
            n++;
        }
        AtomicFile.Replace(Path.Combine(outDir, "records.jsonl"), Encoding.UTF8.GetBytes(output.ToString()));
        return n;
    }

    /// <summary>The Python encode request for one call's padded chunks: ids, weights and fixes (offset, key, path).</summary>
    public static JsonObject EncodeRequest(IReadOnlyList<IReadOnlyList<PromptChunk>> texts) =>
        EmbeddingRequest.Build(texts.Select(t => (IReadOnlyList<TokenChunk>)t.Select(TokenChunk.From).ToList()).ToList());
}
