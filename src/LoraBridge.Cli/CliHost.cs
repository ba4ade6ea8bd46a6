using System.Collections;
using System.CommandLine;
using LoraBridge.Python;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LoraBridge.Cli;

/// <summary>Options every command accepts, and the generic host a command's action runs in.</summary>
public static class CliHost
{
    /// <summary>Exit code when the user cancelled (Ctrl+C), as shells report SIGINT.</summary>
    public const int CancelledExitCode = 130;

    /// <summary>Exit code after SIGTERM (128 + 15), as shells report it.</summary>
    public const int TerminatedExitCode = 143;

    /// <summary><c>--python PATH</c> → <c>LoraBridge:Python:Executable</c>.</summary>
    public static readonly Option<string> Python = new("--python")
    { Description = "Python interpreter to embed (skips discovery)", Recursive = true, HelpName = "path" };

    /// <summary><c>--webui-dir DIR</c> → <c>LoraBridge:WebUiDir</c>.</summary>
    public static readonly Option<string> WebUiDir = OptionValidation.ExistingFolder(new("--webui-dir")
    { Description = "An existing AUTOMATIC1111 stable-diffusion-webui folder; its venv is tried first", Recursive = true, HelpName = "dir" });

    /// <summary><c>--torch-threads N</c> → <c>LoraBridge:TorchThreads</c>.</summary>
    public static readonly Option<int?> TorchThreads = OptionValidation.Range(new Option<int?>("--torch-threads")
    { Description = "CPU threads for torch (default: all cores)", Recursive = true, HelpName = "n" }, 0, LoraBridge.Engine.GenerationLimits.MaxThreads);

    /// <summary><c>--data-dir DIR</c> → <c>LoraBridge:DataDir</c>.</summary>
    public static readonly Option<string> DataDir = new("--data-dir")
    { Description = "LoraBridge's own data folder (default ~/.local/share/lorabridge)", Recursive = true, HelpName = "dir" };

    /// <summary><c>--embeddings-dir DIR</c> (repeatable) → <c>LoraBridge:EmbeddingsDirs</c>.</summary>
    public static readonly Option<string[]> EmbeddingsDir = new("--embeddings-dir")
    { Description = "Textual-inversion embeddings folder (repeatable; A1111's embeddings/ under --webui-dir is also read)", Recursive = true, HelpName = "dir" };

    /// <summary><c>--verbose</c>: debug logging.</summary>
    public static readonly Option<bool> Verbose = new("--verbose", "-v")
    { Description = "Log debug details to stderr", Recursive = true };

    /// <summary>Adds the global options to the root command.</summary>
    public static void AddGlobalOptions(RootCommand root)
    {
        root.Add(Python);
        root.Add(WebUiDir);
        root.Add(TorchThreads);
        root.Add(DataDir);
        root.Add(EmbeddingsDir);
        root.Add(Verbose);
    }

    /// <summary>
    /// Builds the host for one command: content root = the app's folder (so it works from any working directory),
    /// appsettings.json, <c>LORABRIDGE_</c> environment variables and the parsed command line bound into
    /// <see cref="LoraBridgeOptions"/>; console logging to stderr; the Python services from <see cref="ServiceCollectionExtensions.AddLoraBridgePython"/>.
    /// </summary>
    public static IHost Build(ParseResult parse)
    {
        // The empty builder plus exactly the defaults this app relies on (appsettings[.ENV].json, environment variables,
        // the Logging section): the full default builder also sets up file watchers, user secrets and the EventLog,
        // EventSource and Debug loggers that are cleared right after, which cost every command ~0.1 s (0.6 s measured
        // on a loaded machine) before any of its own work.
        var settings = new HostApplicationBuilderSettings
        {
            ContentRootPath = AppContext.BaseDirectory,
            ApplicationName = "lorabridge",
            EnvironmentName = Environment.GetEnvironmentVariable("DOTNET_ENVIRONMENT") is { Length: > 0 } env ? env : Environments.Production,
        };
        var builder = Host.CreateEmptyApplicationBuilder(settings);
        builder.Configuration.SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true, reloadOnChange: false)
            .AddJsonFile($"appsettings.{settings.EnvironmentName}.json", optional: true, reloadOnChange: false)
            .AddEnvironmentVariables();
        builder.Logging.AddConfiguration(builder.Configuration.GetSection("Logging"));
        builder.Configuration.AddInMemoryCollection(PrefixedEnvironment());
        builder.Configuration.AddInMemoryCollection(CommandLineSettings(parse));

        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.IncludeScopes = false; });
        builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);

        builder.Services.AddOptions<LoraBridgeOptions>()
            .Bind(builder.Configuration.GetSection(LoraBridgeOptions.Section))
            .Validate(o => o.TorchThreads is null or >= 0, "LoraBridge:TorchThreads must be 0 (all cores) or a positive thread count")
            .Validate(o => o.TorchThreads is null or <= LoraBridge.Engine.GenerationLimits.MaxThreads,
                $"LoraBridge:TorchThreads must be at most {LoraBridge.Engine.GenerationLimits.MaxThreads}")
            .Validate(o => o.Precision is null or "full" or "autocast", "LoraBridge:Precision must be full or autocast");
        builder.Services.AddLoraBridgePython(sp => sp.GetRequiredService<IOptions<LoraBridgeOptions>>().Value.ToRuntimeOptions());
        return builder.Build();
    }

    /// <summary>
    /// Runs a command's action inside a freshly built host and maps the failures every command shares to exit codes:
    /// a Python exception → 1 (traceback with --verbose); bad configuration → 2; no usable Python → 3 with the reason;
    /// Ctrl+C → 130. Disposing the host shuts Python down.
    /// </summary>
    public static async Task<int> RunAsync(ParseResult parse, CancellationToken ct, Func<IServiceProvider, CancellationToken, Task<int>> action)
    {
        IHost host;
        try
        {
            host = Build(parse);
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or InvalidDataException)
        {
            await Console.Error.WriteLineAsync($"error: invalid configuration: {ex.Message}");
            return 2;
        }
        try
        {
            // Bind now, so a bad value fails here with its key rather than deep inside a command.
            _ = host.Services.GetRequiredService<IOptions<LoraBridgeOptions>>().Value;
        }
        catch (Exception ex) when (ex is InvalidOperationException or OptionsValidationException)
        {
            host.Dispose();
            await Console.Error.WriteLineAsync($"error: invalid configuration: {ex.Message}");
            return 2;
        }
        bool verbose = parse.GetValue(Verbose);
        if (verbose) BridgeCallTimings.Enabled = true;
        var provider = host.Services.GetRequiredService<PythonRuntimeProvider>();
        try
        {
            return await RunInHostAsync(host, action, ct);
        }
        finally
        {
            // After the host (and so Python) is disposed, so the shutdown is part of the figures.
            if (verbose) StartupTimings.Write(Console.Error, provider);
        }
    }

    private static async Task<int> RunInHostAsync(IHost host, Func<IServiceProvider, CancellationToken, Task<int>> action, CancellationToken ct)
    {
        using (host)
        {
            try
            {
                StartupTimings.HostReady();
                return await action(host.Services, ct);
            }
            catch (ArgumentException ex)
            {
                // Bad option values (e.g. --size 512) found while building a request.
                await Console.Error.WriteLineAsync($"error: {ex.Message}");
                return 2;
            }
            catch (LoraBridge.Extensions.ExtensionException ex)
            {
                await Console.Error.WriteLineAsync($"error: {ex.Message}");
                return 1;
            }
            catch (PythonRuntimeUnavailableException ex) when (ex.CacheWasStale && Environment.GetEnvironmentVariable(RestartedVariable) is null)
            {
                // CPython cannot be initialized twice in one process, so the fresh verdict is used by a fresh process.
                await Console.Error.WriteLineAsync($"warning: the cached Python choice failed to start; probing afresh in a new process ({ex.Message.Split('\n')[0].Trim()})");
                return await RestartAsync();
            }
            catch (PythonRuntimeUnavailableException ex)
            {
                await Console.Error.WriteLineAsync($"error: {ex.Message}");
                return 3;
            }
            catch (AggregateException ex) when (ex.InnerException is PythonRuntimeUnavailableException inner)
            {
                await Console.Error.WriteLineAsync($"error: {inner.Message}");
                return 3;
            }
            catch (PythonCallException ex)
            {
                await Console.Error.WriteLineAsync($"error: Python raised {ex.Message}");
                host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("LoraBridge.Cli")
                    .LogDebug("Python traceback:{NewLine}{Traceback}", Environment.NewLine, ex.PythonTraceback);
                return 1;
            }
            catch (OptionsValidationException ex)
            {
                await Console.Error.WriteLineAsync($"error: invalid configuration: {ex.Message}");
                return 2;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // A file or folder problem anywhere (a vanished file, a read-only folder): one line, not a stack trace.
                await Console.Error.WriteLineAsync($"error: {LoraBridge.Engine.TerminalText.Escape(ex.Message)}");
                return 1;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                await Console.Error.WriteLineAsync("cancelled");
                return CancelledExitCode;
            }
        }
    }

    /// <summary>Set in the environment of the process <see cref="RestartAsync"/> starts, so it restarts at most once.</summary>
    public const string RestartedVariable = "LORABRIDGE_RESTARTED_AFTER_STALE_CACHE";

    /// <summary>
    /// Runs this same command line again in a child process that shares stdin, stdout and stderr, and returns its exit
    /// code. Used once, when a cached discovery verdict failed after CPython was initialized.
    /// </summary>
    private static async Task<int> RestartAsync()
    {
        var argv = Environment.GetCommandLineArgs();
        var exe = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this executable is unknown");
        var psi = new System.Diagnostics.ProcessStartInfo(exe) { UseShellExecute = false };
        // Under `dotnet lorabridge.dll`, argv[0] is the dll the host must be given again; under the apphost it is the apphost.
        bool viaDotnet = !string.Equals(Path.GetFileNameWithoutExtension(exe), Path.GetFileNameWithoutExtension(argv[0]), StringComparison.Ordinal);
        foreach (var a in viaDotnet ? argv : argv[1..]) psi.ArgumentList.Add(a);
        psi.Environment[RestartedVariable] = "1";
        using var child = System.Diagnostics.Process.Start(psi) ?? throw new InvalidOperationException($"could not start {exe}");
        // Ctrl+C reaches the child too (same process group); wait for it to finish its own clean-up.
        await child.WaitForExitAsync(CancellationToken.None);
        return child.ExitCode;
    }

    // LORABRIDGE_PYTHON__EXECUTABLE=/x → LoraBridge:PYTHON:EXECUTABLE (configuration keys ignore case).
    private static Dictionary<string, string?> PrefixedEnvironment()
    {
        const string prefix = "LORABRIDGE_";
        var result = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            var key = (string)e.Key;
            if (key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && key.Length > prefix.Length)
                result[LoraBridgeOptions.Section + ":" + key[prefix.Length..].Replace("__", ":", StringComparison.Ordinal)] = e.Value as string;
        }
        return result;
    }

    private static Dictionary<string, string?> CommandLineSettings(ParseResult parse)
    {
        var s = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        if (parse.GetValue(Python) is { } python) s["LoraBridge:Python:Executable"] = python;
        if (parse.GetValue(WebUiDir) is { } webui) s["LoraBridge:WebUiDir"] = webui;
        if (parse.GetValue(TorchThreads) is { } threads) s["LoraBridge:TorchThreads"] = threads.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (parse.GetValue(DataDir) is { } data) s["LoraBridge:DataDir"] = data;
        if (parse.GetValue(EmbeddingsDir) is { Length: > 0 } emb)
            for (int i = 0; i < emb.Length; i++) s[$"LoraBridge:EmbeddingsDirs:{i}"] = emb[i];
        if (parse.GetValue(Verbose))
        {
            s["Logging:LogLevel:Default"] = "Debug";
            s["Logging:LogLevel:Microsoft"] = "Warning";
        }
        return s;
    }
}
