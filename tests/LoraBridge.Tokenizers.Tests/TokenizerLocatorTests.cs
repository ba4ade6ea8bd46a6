namespace LoraBridge.Tokenizers.Tests;

public class TokenizerLocatorTests
{
    private static void WriteVocab(string dir)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "vocab.json"), "{}");
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\n");
    }

    private static TokenizerLocator Locator(TempDir tmp, Dictionary<string, string>? env = null) =>
        new(name => env != null && env.TryGetValue(name, out var v) ? v : null, homeDirectory: tmp.Sub("home"));

    [Fact]
    public void ExplicitFolderWinsAndMustHoldTheFiles()
    {
        using var tmp = new TempDir();
        var dir = tmp.Sub("mine");
        WriteVocab(dir);
        WriteVocab(tmp.Sub("models", "tokenizer"));
        var loc = Locator(tmp).Locate(Path.Combine(tmp.Path, "models", "x.safetensors"), dir);
        Assert.Equal(TokenizerSource.Explicit, loc.Source);
        Assert.Equal(dir, loc.Directory);

        var empty = tmp.Sub("empty");
        var e = Assert.Throws<TokenizerNotFoundException>(() => Locator(tmp).Locate(null, empty));
        Assert.Contains(empty, e.Message);
        Assert.Contains("vocab.json", e.Message);
    }

    [Fact]
    public void DiffusersModelFolderUsesItsTokenizerFolder()
    {
        using var tmp = new TempDir();
        var model = tmp.Sub("sd15");
        WriteVocab(Path.Combine(model, "tokenizer"));
        var loc = Locator(tmp).Locate(model);
        Assert.Equal(TokenizerSource.DiffusersFolder, loc.Source);
        Assert.Equal(Path.Combine(model, "tokenizer"), loc.Directory);
        Assert.Contains("diffusers", loc.Reason);
    }

    [Fact]
    public void FilesBesideACheckpointFileAreFound()
    {
        using var tmp = new TempDir();
        var folder = tmp.Sub("demo");
        var ckpt = Path.Combine(folder, "demo.safetensors");
        File.WriteAllText(ckpt, "");
        WriteVocab(folder);
        Assert.Equal((folder, TokenizerSource.BesideCheckpoint),
            (Locator(tmp).Locate(ckpt).Directory, Locator(tmp).Locate(ckpt).Source));

        // tokenizer/ beside the file comes first
        WriteVocab(Path.Combine(folder, "tokenizer"));
        Assert.Equal(Path.Combine(folder, "tokenizer"), Locator(tmp).Locate(ckpt).Directory);
    }

    [Fact]
    public void OpenAiGzAloneCountsAsTokenizerFiles()
    {
        using var tmp = new TempDir();
        var folder = tmp.Sub("m");
        File.WriteAllText(Path.Combine(folder, "bpe_simple_vocab_16e6.txt.gz"), "");
        Assert.Equal(folder, Locator(tmp).Locate(Path.Combine(folder, "a.ckpt")).Directory);
        File.WriteAllText(Path.Combine(tmp.Sub("n"), "vocab.json"), "{}"); // merges.txt missing: not usable
        Assert.False(TokenizerLocator.HasTokenizerFiles(Path.Combine(tmp.Path, "n")));
    }

    [Fact]
    public void HuggingFaceCacheUnderHfHomeAndDefaultHome()
    {
        using var tmp = new TempDir();
        var ckpt = Path.Combine(tmp.Sub("models"), "real.safetensors");
        var model = Path.Combine(tmp.Path, "hf", "hub", "models--openai--clip-vit-large-patch14");
        WriteVocab(Path.Combine(model, "snapshots", "aaa"));
        WriteVocab(Path.Combine(model, "snapshots", "bbb"));
        var env = new Dictionary<string, string> { ["HF_HOME"] = Path.Combine(tmp.Path, "hf") };
        var loc = Locator(tmp, env).Locate(ckpt);
        Assert.Equal(TokenizerSource.HuggingFaceCache, loc.Source);
        Assert.Equal(Path.Combine(model, "snapshots", "bbb"), loc.Directory);

        Directory.CreateDirectory(Path.Combine(model, "refs"));
        File.WriteAllText(Path.Combine(model, "refs", "main"), "aaa\n");
        Assert.Equal(Path.Combine(model, "snapshots", "aaa"), Locator(tmp, env).Locate(ckpt).Directory);

        var homeModel = Path.Combine(tmp.Path, "home", ".cache", "huggingface", "hub", "models--openai--clip-vit-large-patch14");
        WriteVocab(Path.Combine(homeModel, "snapshots", "c1"));
        Assert.Equal(Path.Combine(homeModel, "snapshots", "c1"), Locator(tmp).Locate(ckpt).Directory);
        Assert.Equal(Path.Combine(tmp.Path, "hub2"),
            Locator(tmp, new() { ["HF_HUB_CACHE"] = Path.Combine(tmp.Path, "hub2") }).HubCacheDirectory());
    }

    [Fact]
    public void MissingTokenizerErrorSaysWhereToGetIt()
    {
        using var tmp = new TempDir();
        var ckpt = Path.Combine(tmp.Sub("models"), "real.safetensors");
        WriteVocab(Path.Combine(tmp.Path, "home", ".cache", "huggingface", "hub", "models--openai--clip-vit-large-patch14", "snapshots"));
        var e = Assert.Throws<TokenizerNotFoundException>(() => Locator(tmp).Locate(ckpt));
        Assert.Contains("openai/clip-vit-large-patch14", e.Message);
        Assert.Contains("merges.txt", e.Message);
        Assert.Contains(Path.Combine(tmp.Path, "models", "tokenizer"), e.Message);
        Assert.Contains("--tokenizer", e.Message);
        Assert.Contains(Path.Combine(tmp.Path, "models"), e.Searched);
    }

    [SharedFact]
    public void LocatedFolderLoadsTheRealVocabulary()
    {
        var loc = new TokenizerLocator(_ => null, "/nonexistent").Locate(null, ClipData.ClipDir);
        var tok = ClipTokenizer.Load(loc);
        Assert.Equal(49408, tok.VocabularySize);
    }
}
