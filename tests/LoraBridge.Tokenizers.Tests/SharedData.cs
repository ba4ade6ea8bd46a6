using System.Text.Json;

namespace LoraBridge.Tokenizers.Tests;

/// <summary>Locates ../shared beside the repository and loads the CLIP tokenizers once per test run.</summary>
internal static class SharedData
{
    private static readonly Lazy<string> SharedDir = new(FindShared);
    private static readonly Lazy<ClipTokenizer> JsonTokenizer = new(() =>
        ClipTokenizer.FromVocabAndMerges(Path.Combine(ClipDir, "vocab.json"), Path.Combine(ClipDir, "merges.txt")));
    private static readonly Lazy<ClipTokenizer> GzTokenizer = new(() =>
        ClipTokenizer.FromBpeGz(Path.Combine(ClipDir, "bpe_simple_vocab_16e6.txt.gz")));

    public static string Shared => SharedDir.Value;
    public static string ClipDir => Path.Combine(Shared, "data", "clip");
    public static string TokenCorpus => Path.Combine(Shared, "conformance", "tokens", "clip_tokens.public.jsonl");
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

    // Tests run from bin/<config>/net10.0; the shared folder sits beside the repository root.
    private static string FindShared()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "..", "shared");
            if (Directory.Exists(Path.Combine(candidate, "conformance", "tokens")) && File.Exists(Path.Combine(dir.FullName, "Directory.Build.props")))
                return Path.GetFullPath(candidate);
        }
        throw new DirectoryNotFoundException($"no ../shared with conformance/tokens above {AppContext.BaseDirectory}");
    }
}
