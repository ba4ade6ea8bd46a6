using LoraBridge.Python;

namespace LoraBridge.Extensions;

/// <summary>The <see cref="IExtensionHost"/> the application hands to extensions.</summary>
public sealed class ExtensionHost : IExtensionHost
{
    private readonly Func<string, string?> _settings;
    private readonly Action<string> _log;
    private readonly Func<PythonBridge?> _bridge;

    /// <summary>Creates a host.</summary>
    /// <param name="dataDir">Folder extensions may write to; created if missing.</param>
    /// <param name="settings">Looks up <c>LoraBridge:Extensions:KEY</c>.</param>
    /// <param name="log">Where <see cref="Log"/> lines go.</param>
    /// <param name="bridge">Gives the Python bridge on first use of <see cref="RunPythonAsync"/> (so Python starts only
    /// when an extension needs it); returns <c>null</c> when none is available.</param>
    /// <param name="modelsDirs">The <c>models</c> folders lent as <see cref="ModelsDirs"/> (made absolute); none when null.</param>
    public ExtensionHost(string dataDir, Func<string, string?> settings, Action<string> log, Func<PythonBridge?> bridge,
        IEnumerable<string>? modelsDirs = null)
    {
        DataDir = Directory.CreateDirectory(dataDir).FullName;
        _settings = settings;
        _log = log;
        _bridge = bridge;
        ModelsDirs = [.. (modelsDirs ?? []).Select(d => Path.GetFullPath(d))];
    }

    /// <inheritdoc />
    public string DataDir { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> ModelsDirs { get; }

    /// <inheritdoc />
    public string? GetSetting(string key) => _settings(key);

    /// <inheritdoc />
    public void Log(string message) => _log(message);

    /// <summary>The bridge, starting Python on first use.</summary>
    /// <exception cref="InvalidOperationException">No Python runtime is available to this host.</exception>
    internal PythonBridge RequireBridge() => _bridge() ?? throw new InvalidOperationException("no Python runtime is available to extensions here");

    /// <inheritdoc />
    public Task<string?> RunPythonAsync(string code, IReadOnlyDictionary<string, string>? inputs = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(code);
        return RequireBridge().RunSnippetAsync(code, inputs, ct);
    }
}
