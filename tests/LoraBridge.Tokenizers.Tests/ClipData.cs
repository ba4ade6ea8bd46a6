using System.Text.Json;

namespace LoraBridge.Tokenizers.Tests;

/// <summary>The CLIP tokenizers and token corpus in ../shared (see <see cref="SharedData"/>), loaded once per test run.</summary>
internal static class ClipData
{
    private static readonly Lazy<ClipTokenizer> JsonTokenizer = new(() =>
        ClipTokenizer.FromVocabAndMerges(Path.Combine(ClipDir, "vocab.json"), Path.Combine(ClipDir, "merges.txt")));
    private static readonly Lazy<ClipTokenizer> GzTokenizer = new(() =>
        ClipTokenizer.FromBpeGz(Path.Combine(ClipDir, "bpe_simple_vocab_16e6.txt.gz")));

    public static string ClipDir => SharedData.ClipDir;
    public static string TokenCorpus => SharedData.Path("conformance", "tokens", "clip_tokens.public.jsonl");
    public static ClipTokenizer Clip => JsonTokenizer.Value;
    public static ClipTokenizer ClipFromGz => GzTokenizer.Value;

    public sealed record TokenRecord(int Line, string Text, int[] Ids, string[] Flags);

    public static IReadOnlyList<TokenRecord> TokenRecords()
    {
        var list = new List<TokenRecord>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(TokenCorpus))
        {
            lineNo++;
            if (line.Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            var flags = root.TryGetProperty("flags", out var f) ? f.EnumerateArray().Select(x => x.GetString()!).ToArray() : [];
            list.Add(new TokenRecord(lineNo, root.GetProperty("text").GetString()!,
                root.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray(), flags));
        }
        return list;
    }
}
