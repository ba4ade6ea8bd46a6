namespace LoraBridge.TestSupport;

/// <summary>
/// The read-only test material in <c>../shared</c> beside the repository (reference data produced by the original
/// implementations, the CLIP vocabulary, conformance models). It is not part of the product, so a checkout without it
/// still builds and tests: tests that read it use <see cref="SharedFactAttribute"/> / <see cref="SharedTheoryAttribute"/>
/// and are reported as skipped, naming the missing folder. When the folder exists but lacks a file, those tests fail.
/// </summary>
public static class SharedData
{
    /// <summary>Environment variable that points at the shared folder explicitly (e.g. when the checkout lives elsewhere).</summary>
    public const string EnvironmentVariable = "LORABRIDGE_SHARED_DIR";

    private static readonly Lazy<string> Location = new(Locate);

    /// <summary>The repository root: the first folder above the test binaries holding <c>LoraBridge.sln</c>.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The full path where the shared folder is expected (whether or not it exists).</summary>
    public static string Dir => Location.Value;

    /// <summary>Whether the shared folder exists.</summary>
    public static bool IsAvailable => Directory.Exists(Dir);

    /// <summary>The one-line reason tests that need the folder are skipped; null when it exists.</summary>
    public static string? SkipReason =>
        IsAvailable ? null : $"test data folder {Dir} not found (../shared beside the checkout, or set {EnvironmentVariable})";

    /// <summary>A path inside the shared folder, e.g. <c>Path("data", "clip")</c>.</summary>
    public static string Path(params string[] parts) => System.IO.Path.Combine([Dir, .. parts]);

    /// <summary>The CLIP ViT-L/14 tokenizer files (vocab.json, merges.txt, bpe_simple_vocab_16e6.txt.gz).</summary>
    public static string ClipDir => Path("data", "clip");

    private static string Locate()
    {
        var explicitDir = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(explicitDir)) return System.IO.Path.GetFullPath(explicitDir);
        return System.IO.Path.GetFullPath(System.IO.Path.Combine(RepoRoot, "..", "shared"));
    }

    private static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(System.IO.Path.Combine(d.FullName, "LoraBridge.sln"))) return d.FullName;
        throw new DirectoryNotFoundException($"LoraBridge.sln not found above {AppContext.BaseDirectory}");
    }
}
