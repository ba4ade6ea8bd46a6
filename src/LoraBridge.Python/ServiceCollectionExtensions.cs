using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LoraBridge.Python;

/// <summary>Registers the Python runtime services with a host.</summary>
public static class ServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="PythonRuntimeOptions"/>, <see cref="PythonDiscovery"/> (report cached per process, verdicts cached
    /// in the data folder), <see cref="PythonRuntimeProvider"/> (discovers and boots on first use, finalizes when the
    /// container is disposed), <see cref="PythonRuntime"/> (resolving it boots) and <see cref="PythonBridge"/> (lazy:
    /// resolving it costs nothing, its first call boots), all singletons.
    /// </summary>
    public static IServiceCollection AddLoraBridgePython(this IServiceCollection services, Func<IServiceProvider, PythonRuntimeOptions> options)
    {
        services.AddSingleton(options);
        services.AddSingleton(sp => new PythonDiscovery(sp.GetRequiredService<PythonRuntimeOptions>()));
        services.AddSingleton(sp => new PythonRuntimeProvider(sp.GetRequiredService<PythonDiscovery>(), sp.GetRequiredService<PythonRuntimeOptions>(),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<PythonRuntime>()));
        // Not registered as a factory of its own: the provider owns (and disposes) the runtime.
        services.AddSingleton(sp => new RuntimeHandle(sp.GetRequiredService<PythonRuntimeProvider>()));
        services.AddTransient(sp => sp.GetRequiredService<RuntimeHandle>().Runtime);
        services.AddSingleton(sp => new PythonBridge(sp.GetRequiredService<PythonRuntimeProvider>()));
        return services;
    }

    // Singleton wrapper so the container does not dispose the runtime a second time, out of order with the provider.
    private sealed class RuntimeHandle(PythonRuntimeProvider provider)
    {
        public PythonRuntime Runtime => provider.Get();
    }
}
