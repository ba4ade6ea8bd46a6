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

    /// <summary>One line saying what the extension does (empty by default).</summary>
    string Description => "";

    /// <summary>Called once after loading, before any hook, with what the application lends extensions.</summary>
    void Initialize(IExtensionHost host) { }

    /// <summary>Before a job is planned: returns the request to run (e.g. with a rewritten prompt).</summary>
    ValueTask<GenerationRequest> BeforeJobAsync(GenerationRequest request, CancellationToken ct) => ValueTask.FromResult(request);

    /// <summary>
    /// After each sampler step, before the next one is issued. Implementing it makes the engine run steps one at a
    /// time (see <see cref="AfterCfgAsync"/>).
    /// </summary>
    ValueTask AfterStepAsync(GenerationProgress progress, CancellationToken ct) => ValueTask.CompletedTask;

    /// <summary>
    /// Inside each model call, right after the CFG combine and before the sampler update uses it (A1111's
    /// <c>on_cfg_after_cfg</c>): <c>step.Denoised</c> is a tensor handle that Python code (<see cref="IExtensionHost.ImportPython"/>)
    /// may change in place; it is valid only while this hook runs. Runs on the Python thread while the step waits, so
    /// Python calls made from here run at once. Implementing it makes the engine run steps one at a time.
    /// </summary>
    ValueTask AfterCfgAsync(CfgStep step, CancellationToken ct) => ValueTask.CompletedTask;

    /// <summary>
    /// Before each image is written (A1111's <c>on_before_image_saved</c>): its RGB pixels, size and infotext
    /// parameters may be changed, and parameters added. Every image of a batch passes here before any is written.
    /// </summary>
    ValueTask BeforeImageSavedAsync(ImageToSave image, CancellationToken ct) => ValueTask.CompletedTask;

    /// <summary>After each PNG file is written.</summary>
    ValueTask AfterImageAsync(GeneratedImage image, CancellationToken ct) => ValueTask.CompletedTask;

    /// <summary>
    /// Inside each model call, right before the model runs (A1111's <c>on_cfg_denoiser</c>): <c>step.X</c> (the model's
    /// input latent), <c>step.Cond</c> and <c>step.Uncond</c> are tensor handles to copies made for this call that
    /// Python code may change in place (same shapes) to change what the model sees; valid only while this hook runs.
    /// Runs on the Python thread while the step waits. Implementing it makes the engine run steps one at a time.
    /// </summary>
    ValueTask BeforeModelCallAsync(DenoiserStep step, CancellationToken ct) => ValueTask.CompletedTask;

    /// <summary>Before each batch (one sampler run) starts: its number and the seeds of its images.</summary>
    ValueTask BeforeBatchAsync(BatchStart batch, CancellationToken ct) => ValueTask.CompletedTask;

    /// <summary>After each batch's images are written and their <see cref="AfterImageAsync"/> calls have run.</summary>
    ValueTask AfterBatchAsync(BatchDone batch, CancellationToken ct) => ValueTask.CompletedTask;
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
    /// The A1111-style <c>models</c> folders in effect, in priority order: <c>&lt;webui&gt;/models</c> when an A1111
    /// install is configured (<c>--webui-dir</c>), then <c>&lt;data dir&gt;/models</c>. Extensions look for their
    /// model files in sub-folders of these (e.g. <c>VAE-approx</c>) instead of guessing paths. The folders need not
    /// exist. Empty by default (a host without model folders).
    /// </summary>
    IReadOnlyList<string> ModelsDirs => [];

    /// <summary>
    /// Runs <paramref name="code"/> on the Python thread (where the models live) with each of
    /// <paramref name="inputs"/> bound as a Python <c>str</c> variable, and returns <c>str(result)</c> if the code
    /// assigned a variable named <c>result</c>, otherwise <c>null</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">No Python runtime is available to this host.</exception>
    /// <exception cref="LoraBridge.Python.PythonCallException">The code raised; carries the Python traceback.</exception>
    Task<string?> RunPythonAsync(string code, IReadOnlyDictionary<string, string>? inputs = null, CancellationToken ct = default);

    /// <summary>
    /// A Python module from the extension's own <c>python/</c> folder (beside its <c>.cs</c> files; the folder goes
    /// on <c>sys.path</c>). Nothing runs until the first <see cref="IPythonModule.CallAsync"/>, which imports it, so
    /// Python starts only when an extension calls it.
    /// </summary>
    /// <param name="module">Module name, e.g. <c>cfg_rescale</c> for <c>python/cfg_rescale.py</c> (dotted for packages).</param>
    /// <exception cref="ExtensionPythonException">No such module file in the extension's python folder.</exception>
    /// <exception cref="NotSupportedException">This host lends no Python modules.</exception>
    IPythonModule ImportPython(string module) => throw new NotSupportedException("this extension host lends no Python modules");
}

/// <summary>A module of an extension's own Python package (see <see cref="IExtensionHost.ImportPython"/>).</summary>
public interface IPythonModule
{
    /// <summary>The module name as imported.</summary>
    string Name { get; }

    /// <summary>
    /// Calls <c>function(*args)</c> on the Python thread. Arguments and results: <c>null</c>, <c>bool</c>, integers
    /// (returned as <c>long</c>), floating-point numbers (<c>double</c>), <c>string</c>, <c>byte[]</c> (Python
    /// <c>bytes</c>), <c>TensorHandle</c> (the function gets the torch tensor itself; a returned tensor comes back as
    /// a handle), lists (<c>List&lt;object?&gt;</c>) and dictionaries with string keys
    /// (<c>Dictionary&lt;string, object?&gt;</c>). A tensor returned during a sampling hook lives until that hook
    /// returns; one returned elsewhere lives as long as the process.
    /// </summary>
    /// <exception cref="ExtensionPythonException">The import or the call raised in Python (syntax error, missing
    /// function, stale tensor handle, …): names the extension, with the Python type and traceback.</exception>
    /// <exception cref="ArgumentException">An argument of a type that cannot cross to Python.</exception>
    Task<object?> CallAsync(string function, params object?[] args);
}

/// <summary>Python code of an extension failed: names the extension, the module and function, with the Python details.</summary>
public sealed class ExtensionPythonException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ExtensionPythonException(string extension, string module, string? function, string pythonType, string pythonMessage, string pythonTraceback,
        Exception? inner = null)
        : base($"extension '{extension}': {(function is null ? $"module {module}" : $"{module}.{function}")}: {pythonType}: {pythonMessage}", inner)
    {
        Extension = extension;
        Module = module;
        Function = function;
        PythonType = pythonType;
        PythonMessage = pythonMessage;
        PythonTraceback = pythonTraceback;
    }

    /// <summary>The extension (its unit name: file stem or folder).</summary>
    public string Extension { get; }

    /// <summary>The module.</summary>
    public string Module { get; }

    /// <summary>The function called; null when the module itself failed.</summary>
    public string? Function { get; }

    /// <summary>Python exception class, e.g. <c>SyntaxError</c>.</summary>
    public string PythonType { get; }

    /// <summary><c>str(exception)</c>.</summary>
    public string PythonMessage { get; }

    /// <summary>The Python traceback.</summary>
    public string PythonTraceback { get; }

    /// <inheritdoc />
    public override string ToString() => base.ToString() + Environment.NewLine + "Python traceback:" + Environment.NewLine + PythonTraceback;
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
