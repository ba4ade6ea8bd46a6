using System.Security.Cryptography;
using System.Text;

namespace LoraBridge.Extensions;

/// <summary>
/// Compiled extension assemblies by content hash, so a command whose extensions did not change skips Roslyn (about
/// two seconds). The key covers everything the image depends on: the cache format, the assembly name, each source's
/// path and bytes, the implicit usings, the LoraBridge assemblies extensions compile against (their module version
/// ids change with every different build) and the compiler's version.
/// </summary>
internal static class ExtensionCache
{
    private const string Format = "lorabridge-extension-cache-1";

    private static readonly Lazy<string> Environment = new(() => string.Join("\\n",
        new[] { typeof(ILoraBridgeExtension), typeof(Engine.GenerationEngine), typeof(Python.PythonBridge) }
            .Select(t => t.Assembly.ManifestModule.ModuleVersionId.ToString())
            .Append(System.Environment.Version.ToString())
            .Append(CompilerVersion())));

    // Read from the assembly's metadata without loading Roslyn's types (that is what a cache hit avoids).
    private static string CompilerVersion()
    {
        var dir = Path.GetDirectoryName(typeof(ExtensionCache).Assembly.Location);
        var path = dir is null ? null : Path.Combine(dir, "Microsoft.CodeAnalysis.CSharp.dll");
        return path is not null && File.Exists(path)
            ? System.Reflection.AssemblyName.GetAssemblyName(path).Version?.ToString() ?? "?"
            : "?";
    }

    /// <summary>The cached image, or null; <paramref name="file"/> is where a compiled image should go (null: no cache).</summary>
    public static byte[]? TryRead(string? cacheDir, string assemblyName, IReadOnlyList<string> files, out string? file)
    {
        file = null;
        if (cacheDir is null) return null;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string text)
        {
            var bytes = Encoding.UTF8.GetBytes(text);
            sha.AppendData(BitConverter.GetBytes(bytes.Length));
            sha.AppendData(bytes);
        }
        Add(Format);
        Add(Environment.Value);
        Add(string.Join(";", ExtensionLoader.ImplicitUsings));
        Add(assemblyName);
        foreach (var source in files)
        {
            Add(source);
            var content = File.ReadAllBytes(source);
            sha.AppendData(BitConverter.GetBytes(content.Length));
            sha.AppendData(content);
        }
        file = Path.Combine(cacheDir, Convert.ToHexStringLower(sha.GetHashAndReset()) + ".dll");
        try
        {
            return File.Exists(file) ? File.ReadAllBytes(file) : null;
        }
        catch (IOException)
        {
            return null; // unreadable entry: compile again and rewrite it
        }
    }

    /// <summary>Stores an image (written whole, then renamed, so a reader never sees half of one); failures only cost a compile next time.</summary>
    public static void Write(string? file, byte[] image)
    {
        if (file is null) return;
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            var temp = file + "." + Guid.NewGuid().ToString("N") + ".tmp";
            File.WriteAllBytes(temp, image);
            File.Move(temp, file, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
