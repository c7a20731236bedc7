using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using FluentAssertions;

namespace MessageQueue.ContractTests.Support;

/// <summary>
/// Lists an assembly's public surface, one member per line, and compares it with a checked-in
/// PublicAPI.txt. PublicApiAnalyzers is not available here, so this test is the tool: an API change
/// shows up as a one-line diff. Set MQ_UPDATE_PUBLIC_API=1 to rewrite the file after a deliberate change.
/// </summary>
public static class PublicApi
{
    public static void ShouldMatchFile(Assembly assembly, string path)
    {
        List<string> actual = Describe(assembly);
        if (Environment.GetEnvironmentVariable("MQ_UPDATE_PUBLIC_API") == "1")
        {
            File.WriteAllLines(path, actual);
            return;
        }

        List<string> expected = File.Exists(path) ? [.. File.ReadAllLines(path).Where(l => l.Length > 0)] : [];
        string[] added = [.. actual.Except(expected, StringComparer.Ordinal)];
        string[] removed = [.. expected.Except(actual, StringComparer.Ordinal)];
        if (added.Length > 0 || removed.Length > 0)
        {
            var message = new StringBuilder()
                .AppendLine($"The public API of {assembly.GetName().Name} differs from {path}.")
                .AppendLine("If the change is deliberate, run the tests once with MQ_UPDATE_PUBLIC_API=1 and commit the file.");
            foreach (string line in added)
            {
                message.AppendLine("+ " + line);
            }

            foreach (string line in removed)
            {
                message.AppendLine("- " + line);
            }

            throw new Xunit.Sdk.XunitException(message.ToString());
        }

        actual.Should().Equal(expected, "the file lists the surface in a stable order");
    }

    /// <summary>
    /// The repository root: the nearest folder above the test binaries that holds MessageQueue.sln.
    /// (Source paths from [CallerFilePath] are mapped to /_/ in CI builds, so they cannot be used.)
    /// </summary>
    public static string RepositoryRoot()
    {
        for (DirectoryInfo? folder = new(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "MessageQueue.sln")))
            {
                return folder.FullName;
            }
        }

        throw new InvalidOperationException($"No MessageQueue.sln above {AppContext.BaseDirectory}; run the tests from a checkout of the repository.");
    }

    public static List<string> Describe(Assembly assembly)
    {
        var lines = new List<string>();
        foreach (Type type in assembly.GetExportedTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            lines.Add($"{Kind(type)} {Name(type)}{BaseList(type)}");
            const BindingFlags flags = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            var members = new List<string>();
            foreach (MemberInfo member in type.GetMembers(flags))
            {
                if (IsVisible(member) && Describe(type, member) is { } line)
                {
                    members.Add(line);
                }
            }

            members.Sort(StringComparer.Ordinal);
            lines.AddRange(members);
        }

        return lines;
    }

    private static bool IsVisible(MemberInfo member) => member switch
    {
        MethodBase m => m.IsPublic || m.IsFamily || m.IsFamilyOrAssembly,
        FieldInfo f => f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly,
        PropertyInfo p => p.GetMethod is { } g && IsVisible(g) || p.SetMethod is { } s && IsVisible(s),
        EventInfo e => e.AddMethod is { } a && IsVisible(a),
        Type t => t.IsNestedPublic || t.IsNestedFamily,
        _ => false,
    };

    private static string? Describe(Type owner, MemberInfo member)
    {
        string prefix = Name(owner) + ".";
        switch (member)
        {
            case ConstructorInfo c:
                return $"{prefix}ctor({Parameters(c)}){Access(c)}";
            case MethodInfo m when m.IsSpecialName || m.Name.StartsWith('<'):
                return null; // accessors are listed with their property or event; <Clone>$ is a record's compiler detail
            case MethodInfo m:
                string generic = m.IsGenericMethodDefinition ? "<" + string.Join(", ", m.GetGenericArguments().Select(a => a.Name)) + ">" : "";
                return $"{prefix}{m.Name}{generic}({Parameters(m)}) -> {Name(m.ReturnType, m.ReturnParameter)}{Modifiers(m)}{Access(m)}";
            case PropertyInfo p:
                string accessors = (p.GetMethod is { } g && IsVisible(g) ? " get;" : "") + (p.SetMethod is { } s && IsVisible(s) ? (IsInit(s) ? " init;" : " set;") : "");
                return $"{prefix}{p.Name} {{{accessors} }} -> {Name(p.PropertyType, p)}{Modifiers(p.GetMethod ?? p.SetMethod!)}";
            case FieldInfo f when f.IsSpecialName:
                return null; // an enum's value__
            case FieldInfo f:
                return $"{prefix}{f.Name} -> {Name(f.FieldType)}{(f.IsLiteral ? " = " + Literal(f.GetRawConstantValue()) : f.IsStatic ? " static" : "")}";
            case EventInfo e:
                return $"{prefix}{e.Name} event -> {Name(e.EventHandlerType!)}";
            case Type:
                return null; // nested types are listed as types of their own
            default:
                return null;
        }
    }

    private static bool IsInit(MethodInfo setter) =>
        setter.ReturnParameter.GetRequiredCustomModifiers().Any(m => m.FullName == "System.Runtime.CompilerServices.IsExternalInit");

    private static string Access(MethodBase method) => method.IsFamily || method.IsFamilyOrAssembly ? " protected" : "";

    private static string Modifiers(MethodInfo method) =>
        method.IsStatic ? " static"
        : method.IsAbstract ? " abstract"
        : method.IsVirtual && !method.IsFinal && method.GetBaseDefinition() == method ? " virtual"
        : method.GetBaseDefinition() != method ? " override"
        : "";

    private static string Parameters(MethodBase method) => string.Join(", ", method.GetParameters().Select(p =>
        (p.ParameterType.IsByRef ? (p.IsOut ? "out " : p.IsIn ? "in " : "ref ") : "") +
        Name(p.ParameterType.IsByRef ? p.ParameterType.GetElementType()! : p.ParameterType, p) + " " + p.Name +
        (p.HasDefaultValue ? " = " + (p.DefaultValue is null && p.ParameterType.IsValueType ? "default" : Literal(p.DefaultValue)) : "")));

    private static string Literal(object? value) => value switch
    {
        null => "null",
        string s => "\"" + s + "\"",
        bool b => b ? "true" : "false",
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "?",
    };

    private static string Kind(Type type) =>
        type.IsInterface ? "interface"
        : type.IsEnum ? "enum"
        : type.IsValueType ? (type.GetCustomAttribute<IsReadOnlyAttribute>() is not null ? "readonly struct" : "struct")
        : type.IsAbstract && type.IsSealed ? "static class"
        : type.IsAbstract ? "abstract class"
        : type.IsSealed ? "sealed class"
        : "class";

    private static string BaseList(Type type)
    {
        var bases = new List<string>();
        if (type.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum))
        {
            bases.Add(Name(b));
        }

        bases.AddRange(type.GetInterfaces().Where(i => i.IsPublic || i.IsNestedPublic).Select(i => Name(i)).Order(StringComparer.Ordinal));
        return bases.Count == 0 ? "" : " : " + string.Join(", ", bases);
    }

    private static string Name(Type type, ICustomAttributeProvider? nullability = null)
    {
        string name = type.IsGenericParameter ? type.Name
            : type.IsArray ? Name(type.GetElementType()!) + "[]"
            : type.IsGenericType
                ? (type.Namespace is null ? "" : type.Namespace + ".") + (type.DeclaringType is { } d ? Name(d) + "." : "") + type.Name[..type.Name.IndexOf('`', StringComparison.Ordinal)] +
                  "<" + string.Join(", ", type.GetGenericArguments().Select(a => Name(a))) + ">"
                : type.FullName ?? type.Name;
        name = name.Replace('+', '.');
        bool nullableReference = !type.IsValueType && !type.IsGenericParameter && nullability switch
        {
            ParameterInfo p => new NullabilityInfoContext().Create(p).ReadState == NullabilityState.Nullable,
            PropertyInfo p => new NullabilityInfoContext().Create(p).ReadState == NullabilityState.Nullable,
            _ => false,
        };
        return nullableReference ? name + "?" : name;
    }
}
