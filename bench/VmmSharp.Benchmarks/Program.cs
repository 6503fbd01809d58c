using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/VmmSharp.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);

/// <summary>Entry point holder.</summary>
internal sealed partial class Program;
