using LoraBridge.Engine;

namespace LoraBridge.Extensions;

/// <summary>
/// A LoraBridge extension: a public class with a parameterless constructor in a <c>.cs</c> file under an extension
/// folder. Every hook has a do-nothing default, so an extension implements only what it needs.
/// </summary>
public interface ILoraBridgeExtension
{
    /// <summary>Short name shown by <c>lorabridge extensions list</c> and used in error messages.</summary>
    string Name { get; }

    /// <summary>One line saying what the extension does.</summary>
    string Description { get; }

    /// <summary>Called once after loading, before any hook, with what the application lends extensions.</summary>
    void Initialize(IExtensionHost host) { }

    /// <summary>Before a job is planned: returns the request to run (e.g. with a rewritten prompt).</summary>
    ValueTask<GenerationRequest> BeforeJobAsync(GenerationRequest request, CancellationToken ct) => ValueTask.FromResult(request);

    /// <summary>After each sampler step.</summary>
    ValueTask AfterStepAsync(GenerationProgress progress, CancellationToken ct) => ValueTask.CompletedTask;

    /// <summary>After each PNG file is written.</summary>
    ValueTask AfterImageAsync(GeneratedImage image, CancellationToken ct) => ValueTask.CompletedTask;
}

/// <summary>What the application lends an extension: its settings, a folder to write to, a log and Python.</summary>
public interface IExtensionHost
{
    /// <summary>
    /// A setting from configuration section <c>LoraBridge:Extensions:&lt;key&gt;</c> (e.g. <c>PromptSuffix:Suffix</c>,
    /// or the environment variable <c>LORABRIDGE_EXTENSIONS__PROMPTSUFFIX__SUFFIX</c>); <c>null</c> when unset.
    /// </summary>
    string? GetSetting(string key);

    /// <summary>A folder extensions may write files to (logs, caches); it exists.</summary>
    string DataDir { get; }

    /// <summary>Writes a line to the application's log (stderr in the CLI).</summary>
    void Log(string message);

    /// <summary>
    /// Runs <paramref name="code"/> on the Python thread (where the models live) with each of
    /// <paramref name="inputs"/> bound as a Python <c>str</c> variable, and returns <c>str(result)</c> if the code
    /// assigned a variable named <c>result</c>, otherwise <c>null</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">No Python runtime is available to this host.</exception>
    /// <exception cref="LoraBridge.Python.PythonCallException">The code raised; carries the Python traceback.</exception>
    Task<string?> RunPythonAsync(string code, IReadOnlyDictionary<string, string>? inputs = null, CancellationToken ct = default);
}

/// <summary>An extension hook threw; names the extension and the hook.</summary>
public sealed class ExtensionException(string extension, string hook, Exception inner)
    : Exception($"extension '{extension}' failed in {hook}: {inner.Message}", inner)
{
    /// <summary>Name of the extension that failed.</summary>
    public string Extension { get; } = extension;

    /// <summary>The hook that failed, e.g. <c>BeforeJobAsync</c>.</summary>
    public string Hook { get; } = hook;
}
