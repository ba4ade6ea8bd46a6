using System.Reflection;
using System.Runtime.Loader;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace LoraBridge.Extensions;

/// <summary>How loading one extension unit (a file or a folder) ended.</summary>
public enum ExtensionStatus
{
    /// <summary>Compiled and its extensions were created.</summary>
    Loaded,
    /// <summary>The C# did not compile; see <see cref="ExtensionUnit.Errors"/>.</summary>
    CompileFailed,
    /// <summary>Compiled, but no extension could be created or initialized; see <see cref="ExtensionUnit.LoadError"/>.</summary>
    LoadFailed,
}

/// <summary>One compile error, positioned as an editor shows it (1-based line and column).</summary>
/// <param name="File">Source file (full path), or the unit's path for errors without a location.</param>
/// <param name="Line">1-based line; 0 when the error has no location.</param>
/// <param name="Column">1-based column; 0 when the error has no location.</param>
/// <param name="Id">Compiler diagnostic id, e.g. <c>CS0103</c>.</param>
/// <param name="Message">Compiler message.</param>
public sealed record CompileError(string File, int Line, int Column, string Id, string Message)
{
    /// <summary>The compiler's usual <c>file(line,col): error ID: message</c> form.</summary>
    public override string ToString() => $"{File}({Line},{Column}): error {Id}: {Message}";
}

/// <summary>One compiled unit: a top-level <c>.cs</c> file, or a subfolder whose <c>.cs</c> files compile together.</summary>
public sealed class ExtensionUnit
{
    internal ExtensionUnit(string name, string path, IReadOnlyList<string> files)
    {
        Name = name;
        Path = path;
        Files = files;
    }

    /// <summary>File stem or folder name.</summary>
    public string Name { get; }

    /// <summary>The file or folder.</summary>
    public string Path { get; }

    /// <summary>The source files compiled together.</summary>
    public IReadOnlyList<string> Files { get; }

    /// <summary>The unit's Python folder (<c>python/</c> in a folder unit, whether it exists or not); null for a single file.</summary>
    public string? PythonDir => Directory.Exists(Path) ? System.IO.Path.Combine(Path, "python") : null;

    /// <summary>True when the assembly came from the compiled-extension cache (no Roslyn compile this time).</summary>
    public bool FromCache { get; internal set; }

    /// <summary>Outcome.</summary>
    public ExtensionStatus Status { get; internal set; }

    /// <summary>Compile errors (empty unless <see cref="ExtensionStatus.CompileFailed"/>).</summary>
    public IReadOnlyList<CompileError> Errors { get; internal set; } = [];

    /// <summary>Why loading failed after compiling (<see cref="ExtensionStatus.LoadFailed"/>).</summary>
    public string? LoadError { get; internal set; }

    /// <summary>The extensions this unit created, in type-name order.</summary>
    public IReadOnlyList<ILoraBridgeExtension> Extensions { get; internal set; } = [];

    internal AssemblyLoadContext? Context { get; set; }
}

/// <summary>
/// Finds <c>.cs</c> files in extension folders, compiles each unit with Roslyn into an in-memory assembly loaded in
/// its own collectible <see cref="AssemblyLoadContext"/>, and creates the public <see cref="ILoraBridgeExtension"/>
/// classes. A unit that fails is reported and skipped; the others still load.
/// </summary>
public static class ExtensionLoader
{
    /// <summary>Usings every extension gets without writing them (as the SDK's implicit usings do for projects).</summary>
    public static readonly IReadOnlyList<string> ImplicitUsings =
    [
        "System", "System.Collections.Generic", "System.IO", "System.Linq", "System.Threading", "System.Threading.Tasks",
        "LoraBridge.Engine", "LoraBridge.Extensions",
    ];

    // pythonnet stays out of reach: extensions call Python through IExtensionHost, so Python objects cannot escape
    // the Python thread.
    private static readonly HashSet<string> Hidden = new(StringComparer.OrdinalIgnoreCase) { "Python.Runtime" };

    private static readonly Lazy<IReadOnlyList<MetadataReference>> References = new(LoadReferences);

    /// <summary>
    /// The default folder: <c>&lt;dataDir&gt;/extensions</c>, where a user installs extensions. The checkout's
    /// <c>extensions/</c> holds samples that do nothing until configured, so it is not searched unless configured
    /// (<c>LoraBridge:Extensions:Dirs</c>): compiling costs about two seconds a command.
    /// </summary>
    public static IReadOnlyList<string> DefaultFolders(string dataDir) =>
        [System.IO.Path.Combine(System.IO.Path.GetFullPath(dataDir), "extensions")];

    /// <summary>
    /// The units in <paramref name="folders"/> (missing folders are skipped): each top-level <c>*.cs</c> file is a unit,
    /// and each subfolder holding <c>*.cs</c> files (at any depth) is one unit. Ordered by folder, then path.
    /// </summary>
    public static IReadOnlyList<ExtensionUnit> Discover(IEnumerable<string> folders)
    {
        var units = new List<ExtensionUnit>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var folder in folders.Select(System.IO.Path.GetFullPath))
        {
            if (!Directory.Exists(folder) || !seen.Add(folder)) continue;
            foreach (var file in Directory.GetFiles(folder, "*.cs").Order(StringComparer.Ordinal))
                units.Add(new ExtensionUnit(System.IO.Path.GetFileNameWithoutExtension(file), file, [file]));
            foreach (var sub in Directory.GetDirectories(folder).Order(StringComparer.Ordinal))
            {
                var files = Directory.GetFiles(sub, "*.cs", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
                if (files.Count > 0) units.Add(new ExtensionUnit(System.IO.Path.GetFileName(sub), sub, files));
            }
        }
        return units;
    }

    /// <summary>Discovers, compiles and loads every unit in <paramref name="folders"/>, initializing each extension with <paramref name="host"/>.</summary>
    public static ExtensionSet Load(IEnumerable<string> folders, IExtensionHost host) => Load(folders, host, cacheDir: null);

    /// <summary>
    /// <see cref="Load(IEnumerable{string}, IExtensionHost)"/> with a compiled-extension cache: a unit whose sources
    /// (paths and bytes), LoraBridge assemblies and compiler are unchanged loads its assembly from
    /// <paramref name="cacheDir"/> without starting Roslyn; others are compiled and stored there. Null: no cache.
    /// </summary>
    public static ExtensionSet Load(IEnumerable<string> folders, IExtensionHost host, string? cacheDir)
    {
        var units = Discover(folders);
        foreach (var unit in units) LoadUnit(unit, host, cacheDir);
        return new ExtensionSet(units);
    }

    /// <summary>Compiles one unit's sources to an assembly image; on failure returns the errors and no image.</summary>
    public static (byte[]? Image, IReadOnlyList<CompileError> Errors) Compile(string assemblyName, IReadOnlyList<string> files, string? unitPath = null)
    {
        var parse = CSharpParseOptions.Default.WithLanguageVersion(LanguageVersion.Latest);
        var trees = new List<SyntaxTree>
        {
            CSharpSyntaxTree.ParseText(string.Concat(ImplicitUsings.Select(u => $"global using {u};\n")), parse, path: "<implicit usings>"),
        };
        foreach (var file in files)
            trees.Add(CSharpSyntaxTree.ParseText(Microsoft.CodeAnalysis.Text.SourceText.From(File.ReadAllText(file), Encoding.UTF8), parse, path: file));
        var options = new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary,
            optimizationLevel: OptimizationLevel.Release, nullableContextOptions: NullableContextOptions.Enable);
        var compilation = CSharpCompilation.Create(assemblyName, trees, References.Value, options);
        using var image = new MemoryStream();
        var result = compilation.Emit(image);
        if (result.Success) return (image.ToArray(), []);
        var errors = result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Select(d =>
        {
            if (!d.Location.IsInSource) return new CompileError(unitPath ?? assemblyName, 0, 0, d.Id, d.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
            var span = d.Location.GetMappedLineSpan();
            return new CompileError(span.Path, span.StartLinePosition.Line + 1, span.StartLinePosition.Character + 1, d.Id,
                d.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        }).ToList();
        return (null, errors);
    }

    private static void LoadUnit(ExtensionUnit unit, IExtensionHost host, string? cacheDir)
    {
        string assemblyName = "LoraBridgeExtension_" + unit.Name;
        var image = ExtensionCache.TryRead(cacheDir, assemblyName, unit.Files, out var cacheFile);
        unit.FromCache = image is not null;
        if (image is null)
        {
            var (compiled, errors) = Compile(assemblyName, unit.Files, unit.Path);
            if (compiled is null)
            {
                unit.Status = ExtensionStatus.CompileFailed;
                unit.Errors = errors;
                return;
            }
            image = compiled;
            ExtensionCache.Write(cacheFile, image);
        }
        var context = new AssemblyLoadContext("lorabridge-extension:" + unit.Path, isCollectible: true);
        unit.Context = context;
        var created = new List<ILoraBridgeExtension>();
        string? current = null;
        try
        {
            var assembly = context.LoadFromStream(new MemoryStream(image));
            var types = assembly.GetExportedTypes()
                .Where(t => t is { IsClass: true, IsAbstract: false } && typeof(ILoraBridgeExtension).IsAssignableFrom(t))
                .OrderBy(t => t.FullName, StringComparer.Ordinal).ToList();
            if (types.Count == 0) throw new InvalidOperationException($"no public class implements {nameof(ILoraBridgeExtension)}");
            foreach (var type in types)
            {
                current = type.FullName;
                if (type.GetConstructor(Type.EmptyTypes) is null) throw new InvalidOperationException("it has no public parameterless constructor");
                var extension = (ILoraBridgeExtension)Activator.CreateInstance(type)!;
                extension.Initialize(new UnitHost(host, unit));
                created.Add(extension);
            }
            unit.Status = ExtensionStatus.Loaded;
            unit.Extensions = created;
        }
        catch (BadImageFormatException) when (unit.FromCache && cacheFile is not null)
        {
            // A damaged cache entry: drop it and compile afresh.
            context.Unload();
            unit.Context = null;
            try { File.Delete(cacheFile); } catch (IOException) { }
            LoadUnit(unit, host, cacheDir: null);
        }
        catch (Exception ex)
        {
            var inner = ex is TargetInvocationException { InnerException: { } i } ? i : ex;
            unit.Status = ExtensionStatus.LoadFailed;
            unit.LoadError = current is null ? inner.Message : $"{current}: {inner.GetType().Name}: {inner.Message}";
            unit.Context = null;
            context.Unload();
        }
    }

    private static IReadOnlyList<MetadataReference> LoadReferences()
    {
        var paths = ((AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") as string) ?? "")
            .Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).ToList();
        // A host whose platform list lacks the LoraBridge assemblies (e.g. a plug-in host) still gets the API.
        paths.AddRange(new[] { typeof(ILoraBridgeExtension), typeof(Engine.GenerationEngine), typeof(LoraBridge.Python.PythonBridge) }
            .Select(t => t.Assembly.Location).Where(l => l.Length > 0));
        var byName = new Dictionary<string, MetadataReference>(StringComparer.OrdinalIgnoreCase);
        foreach (var path in paths)
        {
            var name = System.IO.Path.GetFileNameWithoutExtension(path);
            if (Hidden.Contains(name) || byName.ContainsKey(name) || !File.Exists(path)) continue;
            byName[name] = MetadataReference.CreateFromFile(path);
        }
        return byName.Values.ToList();
    }
}
