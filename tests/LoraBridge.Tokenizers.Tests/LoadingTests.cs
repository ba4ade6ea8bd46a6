using System.IO.Compression;
using System.Text;

namespace LoraBridge.Tokenizers.Tests;

public class LoadingTests
{
    private static string WriteGz(string dir, string content)
    {
        var path = Path.Combine(dir, "bpe_simple_vocab_16e6.txt.gz");
        using var file = File.Create(path);
        using var gz = new GZipStream(file, CompressionLevel.Fastest);
        gz.Write(Encoding.UTF8.GetBytes(content));
        return path;
    }

    [Fact]
    public void SmallGzVocabularyIsLaidOutLikeOpenAi()
    {
        using var tmp = new TempDir();
        // openai keeps the empty string after the last '\n' as a (useless) vocabulary entry before the specials.
        var tok = ClipTokenizer.FromBpeGz(WriteGz(tmp.Path, "#version: demo\nc a\nca t</w>\n"));
        Assert.Equal(512, tok.TokenToId("ca"));
        Assert.Equal(513, tok.TokenToId("cat</w>"));
        Assert.Equal(514, tok.TokenToId(""));
        Assert.Equal((515, 516), (tok.BosId, tok.EosId));
        Assert.Equal(256 + (',' - 33), tok.CommaId); // ",</w>" is a byte entry of every vocabulary
        Assert.Equal([513], tok.Encode("CAT"));
        Assert.Equal([67, 78, 256 + ('g' - 33)], tok.Encode("dog"));
        Assert.Equal(2, tok.MergeCount);
    }

    [Fact]
    public void VocabJsonMissingAPieceNamesIt()
    {
        using var tmp = new TempDir();
        var vocab = Path.Combine(tmp.Path, "vocab.json");
        var merges = Path.Combine(tmp.Path, "merges.txt");
        File.WriteAllText(vocab, "{\"<|startoftext|>\": 0, \"<|endoftext|>\": 1, \"a</w>\": 2}");
        File.WriteAllText(merges, "#version: 0.2\n");
        var tok = ClipTokenizer.FromVocabAndMerges(vocab, merges);
        Assert.Equal([2, 2], tok.Encode("a A"));
        Assert.Null(tok.CommaId);
        var e = Assert.Throws<InvalidOperationException>(() => tok.Encode("b"));
        Assert.Contains("\"b</w>\"", e.Message);
    }

    [Fact]
    public void MalformedFilesNameFileAndLine()
    {
        using var tmp = new TempDir();
        var vocab = Path.Combine(tmp.Path, "vocab.json");
        var merges = Path.Combine(tmp.Path, "merges.txt");
        File.WriteAllText(vocab, "{\"<|startoftext|>\": 0, \"<|endoftext|>\": 1}");
        File.WriteAllText(merges, "#version: 0.2\na b\nabc\n");
        var e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromVocabAndMerges(vocab, merges));
        Assert.Contains(merges + ":3", e.Message);

        File.WriteAllText(merges, "#version: 0.2\n");
        File.WriteAllText(vocab, "{\"a\": 0}");
        e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromVocabAndMerges(vocab, merges));
        Assert.Contains("<|startoftext|>", e.Message);

        File.WriteAllText(vocab, "[1, 2]");
        e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromVocabAndMerges(vocab, merges));
        Assert.Contains(vocab, e.Message);

        var notGz = Path.Combine(tmp.Path, "x.gz");
        File.WriteAllText(notGz, "plain text");
        e = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromBpeGz(notGz));
        Assert.Contains(notGz, e.Message);
    }

    [SharedFact]
    public void CacheDoesNotChangeResultsAcrossThreads()
    {
        var texts = ClipData.TokenRecords();
        var tok = ClipTokenizer.FromDirectory(ClipData.ClipDir);
        var results = new int[texts.Count][];
        Parallel.For(0, texts.Count * 4, i => results[i % texts.Count] = tok.Encode(texts[i % texts.Count].Text));
        for (int i = 0; i < texts.Count; i++) Assert.Equal(texts[i].Ids, results[i]);
    }
}
