using System.Globalization;
using LoraBridge.Prompting;
using LoraBridge.Tokenizers;

namespace LoraBridge.Tui;

/// <summary>A1111's token counter: tokens of the longest scheduled text and the chunk tokens they fill.</summary>
/// <param name="Tokens">A1111's count: 75 for each closed chunk plus the last chunk's tokens.</param>
/// <param name="Limit">Chunks × 75 (at least 75).</param>
/// <param name="PerChunk">Prompt tokens in each chunk.</param>
public sealed record TokenCount(int Tokens, int Limit, IReadOnlyList<int> PerChunk)
{
    /// <summary>"n/75", with the per-chunk counts when the prompt spans several chunks, e.g. "98/150 (71+27)".</summary>
    public override string ToString() => PerChunk.Count <= 1
        ? string.Create(CultureInfo.InvariantCulture, $"{Tokens}/{Limit}")
        : string.Create(CultureInfo.InvariantCulture, $"{Tokens}/{Limit} ({string.Join("+", PerChunk)})");
}

/// <summary>Counts tokens as A1111's counter above the prompt box does.</summary>
public static class TokenCounter
{
    /// <summary>
    /// A1111 (<c>update_token_counter</c>) counts every scheduled text of every AND part of the tag-free prompt and shows
    /// the largest. Texts whose emphasis does not parse are skipped (the plan panel shows their error).
    /// </summary>
    public static TokenCount Count(PromptChunker chunker, PromptPlan plan)
    {
        TokenCount best = new(0, PromptChunker.ChunkLength, [0]);
        if (plan.Passes.Count == 0) return best;
        foreach (var part in plan.Base.Parts)
            foreach (var text in part.Texts)
            {
                if (!text.Fragments.IsOk) continue;
                var chunked = chunker.Chunk(text.WeightedFragments.Select(f => new WeightedText(f.Text, f.Weight)).ToList());
                if (chunked.TokenCount <= best.Tokens && best.PerChunk.Count > 0 && best.Tokens > 0) continue;
                var per = chunked.Chunks.Select(c => c.TokenCount).ToList();
                best = new TokenCount(chunked.TokenCount, Math.Max(1, chunked.Chunks.Count) * PromptChunker.ChunkLength, per);
            }
        return best;
    }
}
