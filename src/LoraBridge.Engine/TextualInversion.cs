using System.Text.Json.Nodes;
using LoraBridge.Models;
using LoraBridge.Prompting;
using LoraBridge.Tokenizers;

namespace LoraBridge.Engine;

/// <summary>One text-encoder call as A1111 makes it (<c>FrozenCLIPEmbedderWithCustomWords.forward</c>).</summary>
/// <param name="Side">"negative" or "positive".</param>
/// <param name="Texts">The batch: one prompt's scheduled texts, repeats included.</param>
/// <param name="Chunks">Each text's chunks padded with A1111's empty chunk to <see cref="ChunkCount"/>.</param>
/// <param name="ChunkCount">Chunks per text in this call.</param>
/// <param name="Used">Embeddings seen in the fixes, A1111's order (chunk by chunk, text by text).</param>
/// <param name="Error">"RuntimeError" when an embedding cannot be written into this encoder, else null.</param>
/// <param name="ErrorMessage">What failed, naming the embedding.</param>
public sealed record TextEncodeCall(string Side, IReadOnlyList<string> Texts, IReadOnlyList<IReadOnlyList<PromptChunk>> Chunks, int ChunkCount,
    IReadOnlyList<EmbeddingEntry> Used, string? Error, string? ErrorMessage);

/// <summary>
/// What A1111 v1.10.1 does with embeddings for one prompt pair: the encode calls (negative first, then one per
/// distinct AND part), every encoded text chunked with its fixes, the "TI hashes" value, the UI token counter, and the
/// error that would abort the generation. Pure C#: the vectors themselves are written in Python.
/// </summary>
public sealed class TextualInversionPlan
{
    /// <summary>The text-encoder key SD 1.x encoders (and SDXL's first) read from SDXL embedding files.</summary>
    public const string ClipL = "clip_l";

    /// <summary>The key SDXL's second (OpenCLIP) encoder reads from SDXL embedding files.</summary>
    public const string ClipG = "clip_g";

    private TextualInversionPlan(IReadOnlyList<TextEncodeCall> calls, IReadOnlyDictionary<string, ChunkedPrompt> lines, IReadOnlyList<string> lineOrder,
        string? tiHashes, (int, int) positiveCounter, (int, int) negativeCounter, TextEncodeCall? failed)
    {
        Calls = calls;
        Lines = lines;
        LineOrder = lineOrder;
        TiHashes = tiHashes;
        PositiveCounter = positiveCounter;
        NegativeCounter = negativeCounter;
        Failed = failed;
    }

    /// <summary>Every call A1111 would plan, in order (calls after <see cref="Failed"/> are not made).</summary>
    public IReadOnlyList<TextEncodeCall> Calls { get; }

    /// <summary>Chunks of every distinct text.</summary>
    public IReadOnlyDictionary<string, ChunkedPrompt> Lines { get; }

    /// <summary>Distinct texts in first-appearance order.</summary>
    public IReadOnlyList<string> LineOrder { get; }

    /// <summary>The infotext "TI hashes" value after the calls (newest call first, duplicates kept), or null.</summary>
    public string? TiHashes { get; }

    /// <summary>A1111's token counter for the positive prompt: (count, target).</summary>
    public (int Count, int Target) PositiveCounter { get; }

    /// <summary>A1111's token counter for the negative prompt.</summary>
    public (int Count, int Target) NegativeCounter { get; }

    /// <summary>The first call that fails, or null.</summary>
    public TextEncodeCall? Failed { get; }

    /// <summary>Plans the calls of <paramref name="prompt"/> and <paramref name="negativePrompt"/>.</summary>
    /// <param name="prompt">Positive prompt (extra-network tags are removed, AND split).</param>
    /// <param name="negativePrompt">Negative prompt (scheduled as is: tags stay text, no AND split).</param>
    /// <param name="steps">Sampling steps.</param>
    /// <param name="chunker">Chunker with the embedding lookup.</param>
    /// <param name="encoderWidth">Width of the text encoder's token embeddings (vectors of another width fail).</param>
    /// <param name="attention">A1111's <c>parse_prompt_attention</c>.</param>
    /// <param name="encoders">The text encoders the vectors go to, each with the key it reads from SDXL files and its
    /// width (SDXL: <c>clip_l</c> and <c>clip_g</c>); null: one encoder, <c>clip_l</c> at <paramref name="encoderWidth"/>.</param>
    public static TextualInversionPlan Create(string prompt, string negativePrompt, int steps, PromptChunker chunker, int encoderWidth,
        Func<string, IReadOnlyList<(string Text, double Weight)>> attention, IReadOnlyList<(string Key, int Width)>? encoders = null)
    {
        encoders ??= [(ClipL, encoderWidth)];
        var lines = new Dictionary<string, ChunkedPrompt>(StringComparer.Ordinal);
        var order = new List<string>();
        ChunkedPrompt Line(string text)
        {
            if (!lines.TryGetValue(text, out var c))
            {
                c = chunker.Chunk(attention(text).Select(f => new WeightedText(f.Text, f.Weight)).ToList());
                lines[text] = c;
                order.Add(text);
            }
            return c;
        }

        var batches = new List<(string Side, IReadOnlyList<string> Texts)> { ("negative", ScheduleTexts(negativePrompt, steps)) };
        foreach (var part in PositiveParts(prompt)) batches.Add(("positive", ScheduleTexts(part, steps)));

        var calls = new List<TextEncodeCall>();
        TextEncodeCall? failed = null;
        string? hashes = null;
        var empty = chunker.EmptyChunk();
        foreach (var (side, texts) in batches)
        {
            var chunked = texts.Select(t => Line(t).Chunks).ToList();
            int count = chunked.Max(c => c.Count);
            var padded = chunked.Select(c => (IReadOnlyList<PromptChunk>)c.Concat(Enumerable.Repeat(empty, count - c.Count)).ToList()).ToList();
            var used = new List<EmbeddingEntry>();
            string? error = null, message = null;
            for (int i = 0; i < count && error is null; i++)
            {
                foreach (var fix in padded.SelectMany(t => t[i].FixList))
                {
                    var entry = EmbeddingDatabase.EntryOf(fix);
                    if (used.All(u => u.Name != entry.Name)) used.Add(entry);
                }
                var bad = padded.SelectMany(t => t[i].FixList).Select(EmbeddingDatabase.EntryOf)
                    .SelectMany(e => encoders.Where(enc => !e.Info.FitsEncoder(enc.Width, enc.Key)).Select(enc => (Entry: e, Encoder: enc)))
                    .FirstOrDefault();
                if (bad.Entry is { } misfit)
                {
                    error = "RuntimeError";
                    var shape = misfit.Info.VectorShapeFor(bad.Encoder.Key) is { } dims ? $"of shape [{string.Join(", ", dims)}]" : $"without '{bad.Encoder.Key}'";
                    message = $"embedding {misfit.Name} ({misfit.File.Path}): vectors {shape} cannot replace token embeddings of width {bad.Encoder.Width}";
                }
            }
            var call = new TextEncodeCall(side, texts, padded, count, used, error, message);
            if (failed is null)
            {
                calls.Add(call);
                if (error is not null) failed = call;
                else hashes = AccumulateHashes(hashes, used);
            }
            else
            {
                // Not made by A1111 (the generation stopped), but its texts are still chunked for the report.
                calls.Add(call);
            }
        }

        var positiveCounter = Counter(PositiveParts(prompt).SelectMany(p => ScheduleTexts(p, steps)), Line);
        var negativeCounter = Counter(ScheduleTexts(ExtraNetworks.Parse(negativePrompt).Prompt, steps), Line);
        return new TextualInversionPlan(calls, lines, order, hashes, positiveCounter, negativeCounter, failed);
    }

    /// <summary>
    /// The "TI hashes" infotext value of a job on <paramref name="checkpoint"/>, or null when it uses no embedding.
    /// </summary>
    /// <exception cref="PromptPlanException">An embedding the prompts use cannot be written into this text encoder
    /// (A1111 aborts the generation with a RuntimeError there).</exception>
    public static string? HashesFor(GenerationRequest request, CheckpointContext checkpoint, IPromptPlanner planner)
    {
        if (checkpoint.Embeddings is not { } db || db.Lookup.IsEmpty) return null;
        // SDXL: each encoder takes its own part of the file (A1111's two EmbeddingsWithFixes), each checked on its width.
        IReadOnlyList<(string, int)>? encoders = null;
        if (checkpoint.Family == BaseFamily.SDXL)
        {
            var (w1, w2) = EmbeddingSources.SdxlEncoderWidths(checkpoint.Path);
            encoders = [(ClipL, w1), (ClipG, w2)];
        }
        var plan = Create(request.Prompt, request.NegativePrompt, request.Steps, checkpoint.Chunker, db.ExpectedShape, planner.Attention, encoders);
        if (plan.Failed is { } failed)
            throw new PromptPlanException($"cannot use the {failed.Side} prompt: {failed.ErrorMessage}");
        return plan.TiHashes;
    }

    /// <summary>A1111's "TI hashes" step after one successful call: this call's names first, then the earlier value.</summary>
    public static string? AccumulateHashes(string? previous, IEnumerable<EmbeddingEntry> used)
    {
        var hashes = used.Where(e => e.ShortHash.Length > 0)
            .Select(e => $"{e.Name.Replace(":", "").Replace(",", "")}: {e.ShortHash}").ToList();
        if (hashes.Count == 0) return previous;
        if (!string.IsNullOrEmpty(previous)) hashes.Add(previous);
        return string.Join(", ", hashes);
    }

    /// <summary>Distinct AND parts of the tag-stripped prompt, in first-appearance order.</summary>
    public static IReadOnlyList<string> PositiveParts(string prompt) =>
        Multicond.Split(ExtraNetworks.Parse(prompt).Prompt).Select(p => p.Text).Distinct(StringComparer.Ordinal).ToList();

    /// <summary>The texts of one prompt's schedule (A1111 falls back to the whole text when it cannot be parsed).</summary>
    public static IReadOnlyList<string> ScheduleTexts(string text, int steps)
    {
        var s = Scheduler.Schedule(text, new ScheduleOptions(steps));
        return s.IsOk ? s.Value!.Select(e => e.Text).ToList() : [text];
    }

    private static (int, int) Counter(IEnumerable<string> texts, Func<string, ChunkedPrompt> line)
    {
        int best = -1;
        foreach (var t in texts) best = Math.Max(best, line(t).TokenCount);
        best = Math.Max(best, 0);
        return (best, TargetTokenCount(best));
    }

    /// <summary>A1111's <c>get_target_prompt_token_count</c>: whole chunks of 75.</summary>
    public static int TargetTokenCount(int count) =>
        (int)Math.Ceiling(Math.Max(count, 1) / (double)PromptChunker.ChunkLength) * PromptChunker.ChunkLength;

    /// <summary>The 77 positions of a chunk: token ids, or (name, k) where vector k of an embedding lands.</summary>
    public static JsonArray Positions(PromptChunk chunk)
    {
        var items = chunk.Ids.Select(i => (JsonNode?)i).ToArray();
        foreach (var fix in chunk.FixList)
        {
            var e = EmbeddingDatabase.EntryOf(fix);
            int n = Math.Min(chunk.Ids.Length - fix.Position, e.Info.RowsFor(ClipL));
            for (int k = 0; k < n; k++) items[fix.Position + k] = new JsonArray(e.Name, k);
        }
        return new JsonArray(items);
    }

    /// <summary>The record fields of the embeddings conformance interface (lines, encode_calls, ti_hashes, token_counter, error).</summary>
    public JsonObject ToRecordJson()
    {
        var lines = new JsonObject();
        foreach (var text in LineOrder)
        {
            var c = Lines[text];
            lines[text] = new JsonObject
            {
                ["token_count"] = c.TokenCount,
                ["chunks"] = new JsonArray(c.Chunks.Select(ch => (JsonNode)new JsonObject
                {
                    ["tokens"] = new JsonArray(ch.Ids.Select(i => (JsonNode)i).ToArray()),
                    ["multipliers"] = new JsonArray(ch.Weights.Select(w => (JsonNode)w).ToArray()),
                    ["fixes"] = new JsonArray(ch.FixList.Select(f => (JsonNode)new JsonArray(f.Position, f.Embedding.Name,
                        Math.Min(ch.Ids.Length - f.Position, EmbeddingDatabase.EntryOf(f).Info.RowsFor(ClipL)))).ToArray()),
                    ["positions"] = Positions(ch),
                }).ToArray()),
            };
        }
        var made = Failed is null ? Calls : Calls.Take(Calls.ToList().IndexOf(Failed) + 1);
        return new JsonObject
        {
            ["lines"] = lines,
            ["encode_calls"] = new JsonArray(made.Select(c =>
            {
                var o = new JsonObject
                {
                    ["side"] = c.Side,
                    ["texts"] = new JsonArray(c.Texts.Select(t => (JsonNode)t).ToArray()),
                    ["used"] = new JsonArray(c.Used.Select(u => (JsonNode)u.Name).ToArray()),
                    ["error"] = c.Error,
                };
                if (c.Error is null) o["cond_tokens"] = new JsonArray(c.Texts.Select(_ => (JsonNode)(77 * c.ChunkCount)).ToArray());
                return (JsonNode)o;
            }).ToArray()),
            ["ti_hashes"] = TiHashes,
            ["token_counter"] = new JsonObject
            {
                ["positive"] = new JsonArray(PositiveCounter.Count, PositiveCounter.Target),
                ["negative"] = new JsonArray(NegativeCounter.Count, NegativeCounter.Target),
            },
            ["error"] = Failed is null ? null : new JsonObject { ["exception"] = Failed.Error, ["side"] = Failed.Side },
        };
    }
}

/// <summary>The embeddings section of <c>prompt plan</c>: A1111's token counter and which embeddings each text uses.</summary>
public static class TextualInversionReport
{
    /// <summary>Text lines for a plan (token counter, embeddings per positive text, TI hashes).</summary>
    public static string Format(TextualInversionPlan plan, EmbeddingDatabase db)
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"tokens: {plan.PositiveCounter.Count}/{plan.PositiveCounter.Target} (A1111's counter: every embedding vector counts as a token)");
        sb.AppendLine($"embeddings: {db.Loaded.Count} loaded, {db.Skipped.Count} skipped (wrong width), {db.Errors.Count} unreadable, in {string.Join(", ", db.Folders)}");
        foreach (var call in plan.Calls.Where(c => c.Side == "positive"))
        {
            foreach (var text in call.Texts.Distinct(StringComparer.Ordinal))
            {
                var used = plan.Lines[text].Chunks.SelectMany((c, k) => c.FixList.Select(f => (Chunk: k, Fix: f))).ToList();
                if (used.Count == 0) continue;
                sb.AppendLine($"  \"{text}\": " + string.Join(", ", used.Select(u =>
                {
                    var e = EmbeddingDatabase.EntryOf(u.Fix);
                    return $"{e.Name} ({e.Info.Vectors} vectors, chunk {u.Chunk + 1} position {u.Fix.Position}, {e.ShortHash})";
                })));
            }
        }
        if (plan.Failed is { } failed) sb.AppendLine($"  error: the {failed.Side} prompt cannot be encoded: {failed.ErrorMessage}");
        if (plan.TiHashes is { } h) sb.AppendLine($"TI hashes: {h}");
        return sb.ToString();
    }
}
