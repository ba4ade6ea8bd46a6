namespace LoraBridge.Tokenizers;

/// <summary>Which rule found the tokenizer files.</summary>
public enum TokenizerSource
{
    /// <summary>Given with <c>--tokenizer DIR</c>.</summary>
    Explicit,

    /// <summary>The <c>tokenizer/</c> folder of a diffusers-style model folder.</summary>
    DiffusersFolder,

    /// <summary>Files beside the checkpoint file (a demo model's own vocabulary, or files the user placed there).</summary>
    BesideCheckpoint,

    /// <summary>The Hugging Face cache A1111 fills (<c>models--openai--clip-vit-large-patch14</c>).</summary>
    HuggingFaceCache,
}

/// <summary>A folder with CLIP tokenizer files and why it was chosen.</summary>
/// <param name="Directory">Folder holding <c>vocab.json</c> + <c>merges.txt</c> or <c>bpe_simple_vocab_16e6.txt.gz</c>.</param>
/// <param name="Source">The rule that found it.</param>
/// <param name="Reason">A readable sentence for <c>doctor</c>.</param>
public sealed record TokenizerLocation(string Directory, TokenizerSource Source, string Reason);

/// <summary>No tokenizer files were found; the message lists where it looked and how to get the files.</summary>
public sealed class TokenizerNotFoundException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TokenizerNotFoundException(string message, IReadOnlyList<string> searched) : base(message) => Searched = searched;

    /// <summary>The folders that were searched, in order.</summary>
    public IReadOnlyList<string> Searched { get; }
}

/// <summary>
/// Finds the CLIP tokenizer files for a checkpoint, in this order: <c>--tokenizer DIR</c>; <c>tokenizer/</c> in a
/// diffusers-style model folder; <c>tokenizer/</c> or the files themselves beside a checkpoint file; the Hugging Face
/// cache A1111 fills. The project does not ship OpenAI's vocabulary, so a miss is an error that says where to get it.
/// </summary>
public sealed class TokenizerLocator
{
    /// <summary>HF vocabulary file name.</summary>
    public const string VocabFile = "vocab.json";

    /// <summary>HF merges file name.</summary>
    public const string MergesFile = "merges.txt";

    /// <summary>openai/CLIP's merges file name.</summary>
    public const string OpenAiBpeFile = "bpe_simple_vocab_16e6.txt.gz";

    /// <summary>The Hugging Face repository whose tokenizer SD 1.x uses.</summary>
    public const string HuggingFaceRepo = "openai/clip-vit-large-patch14";

    private readonly Func<string, string?> _getEnvironment;
    private readonly string _home;

    /// <summary>Creates a locator.</summary>
    /// <param name="getEnvironment">Environment lookup (tests pass their own); defaults to the process environment.</param>
    /// <param name="homeDirectory">Home folder for <c>~/.cache</c>; defaults to the user profile.</param>
    public TokenizerLocator(Func<string, string?>? getEnvironment = null, string? homeDirectory = null)
    {
        _getEnvironment = getEnvironment ?? Environment.GetEnvironmentVariable;
        _home = homeDirectory ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
    }

    /// <summary>True when <paramref name="directory"/> holds a usable set of tokenizer files.</summary>
    public static bool HasTokenizerFiles(string directory) =>
        (File.Exists(Path.Combine(directory, VocabFile)) && File.Exists(Path.Combine(directory, MergesFile)))
        || File.Exists(Path.Combine(directory, OpenAiBpeFile));

    /// <summary>Finds the tokenizer folder for a checkpoint.</summary>
    /// <param name="checkpointPath">A checkpoint file or a diffusers-style model folder; null when there is none yet.</param>
    /// <param name="explicitDirectory">The <c>--tokenizer DIR</c> option, which overrides everything else.</param>
    /// <exception cref="TokenizerNotFoundException">
    /// The explicit folder lacks the files, or nothing was found; the message names the folders and the download.
    /// </exception>
    public TokenizerLocation Locate(string? checkpointPath, string? explicitDirectory = null)
    {
        if (!string.IsNullOrEmpty(explicitDirectory))
        {
            var dir = Path.GetFullPath(explicitDirectory);
            if (HasTokenizerFiles(dir))
                return new TokenizerLocation(dir, TokenizerSource.Explicit, $"--tokenizer {dir}");
            throw new TokenizerNotFoundException(
                $"--tokenizer {dir}: the folder does not hold {VocabFile} + {MergesFile} or {OpenAiBpeFile}. " + Advice(null),
                [dir]);
        }

        var searched = new List<string>();
        string? besideFolder = null;
        if (!string.IsNullOrEmpty(checkpointPath))
        {
            var full = Path.GetFullPath(checkpointPath);
            if (Directory.Exists(full))
            {
                var diffusers = Path.Combine(full, "tokenizer");
                searched.Add(diffusers);
                if (HasTokenizerFiles(diffusers))
                    return new TokenizerLocation(diffusers, TokenizerSource.DiffusersFolder,
                        $"tokenizer/ folder of the diffusers-style model {full}");
                besideFolder = diffusers;
            }
            else
            {
                var parent = Path.GetDirectoryName(full) ?? ".";
                besideFolder = Path.Combine(parent, "tokenizer");
                foreach (var dir in new[] { besideFolder, parent })
                {
                    searched.Add(dir);
                    if (HasTokenizerFiles(dir))
                        return new TokenizerLocation(dir, TokenizerSource.BesideCheckpoint,
                            $"tokenizer files beside the checkpoint {Path.GetFileName(full)} in {dir}");
                }
            }
        }

        var hubModel = Path.Combine(HubCacheDirectory(), "models--openai--clip-vit-large-patch14");
        searched.Add(Path.Combine(hubModel, "snapshots", "*"));
        var snapshot = FindSnapshot(hubModel);
        if (snapshot != null)
            return new TokenizerLocation(snapshot, TokenizerSource.HuggingFaceCache,
                $"Hugging Face cache (filled by A1111) {snapshot}");

        var what = string.IsNullOrEmpty(checkpointPath) ? "No CLIP tokenizer found" : $"No CLIP tokenizer found for {checkpointPath}";
        throw new TokenizerNotFoundException(
            $"{what}; searched: {string.Join("; ", searched)}. " + Advice(besideFolder), searched);
    }

    private static string Advice(string? besideFolder) =>
        $"Download {VocabFile} and {MergesFile} from https://huggingface.co/{HuggingFaceRepo} (Files: {VocabFile}, {MergesFile}) " +
        (besideFolder != null ? $"and put them in {besideFolder}, or in a folder passed with --tokenizer DIR." : "and pass their folder with --tokenizer DIR.") +
        " Running A1111 once also fills the Hugging Face cache with them.";

    /// <summary>The hub cache folder: <c>$HF_HUB_CACHE</c>, else <c>$HF_HOME/hub</c>, else <c>~/.cache/huggingface/hub</c>.</summary>
    public string HubCacheDirectory()
    {
        var hub = _getEnvironment("HF_HUB_CACHE") ?? _getEnvironment("HUGGINGFACE_HUB_CACHE");
        if (!string.IsNullOrEmpty(hub)) return hub;
        var hfHome = _getEnvironment("HF_HOME");
        if (string.IsNullOrEmpty(hfHome))
        {
            var xdg = _getEnvironment("XDG_CACHE_HOME");
            hfHome = Path.Combine(string.IsNullOrEmpty(xdg) ? Path.Combine(_home, ".cache") : xdg, "huggingface");
        }
        return Path.Combine(hfHome, "hub");
    }

    // The snapshot refs/main points at, else the last snapshot (by name, for a stable choice) that holds the files.
    private static string? FindSnapshot(string modelDirectory)
    {
        var snapshots = Path.Combine(modelDirectory, "snapshots");
        if (!Directory.Exists(snapshots)) return null;
        var refMain = Path.Combine(modelDirectory, "refs", "main");
        if (File.Exists(refMain))
        {
            var commit = File.ReadAllText(refMain).Trim();
            var pinned = Path.Combine(snapshots, commit);
            if (commit.Length > 0 && HasTokenizerFiles(pinned)) return pinned;
        }
        return Directory.GetDirectories(snapshots)
            .OrderBy(d => d, StringComparer.Ordinal)
            .LastOrDefault(HasTokenizerFiles);
    }
}
