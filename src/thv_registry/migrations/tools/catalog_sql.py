"""The catalog queries behind :func:`thv_registry.migrations.snapshot.take`.

Each reads one kind of object of the schema ``%(ns)s`` (an oid), in a stable order, leaving out
the tables named in ``%(excluded)s`` and objects that belong to an extension.
"""

from __future__ import annotations

NOT_EXT = (
    "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{cat}'::regclass "
    "AND e.objid = {oid} AND e.deptype = 'e')"
)

RELATIONS = f"""
SELECT c.relname, c.relkind::text, c.relpersistence::text, c.relrowsecurity,
       c.relforcerowsecurity, c.relreplident::text,
       coalesce(array_to_string(c.reloptions, ','), ''),
       coalesce(pg_get_partkeydef(c.oid), ''), coalesce(pg_get_expr(c.relpartbound, c.oid), ''),
       coalesce((SELECT string_agg(p.relname, ',' ORDER BY i.inhseqno) FROM pg_inherits i
                   JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid), ''),
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) ELSE '' END
  FROM pg_class c
 WHERE c.relnamespace = %(ns)s AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
   AND NOT c.relname = ANY(%(excluded)s) AND {NOT_EXT.format(cat="pg_class", oid="c.oid")}
 ORDER BY c.relname
"""

COLUMNS = f"""
SELECT c.relname, c.relkind::text, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity::text, a.attgenerated::text,
       coalesce(CASE WHEN a.attcollation <> t.typcollation THEN co.collname END, ''),
       coalesce(array_to_string(a.attacl, ','), '')
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  LEFT JOIN pg_collation co ON co.oid = a.attcollation
 WHERE c.relnamespace = %(ns)s AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'c')
   AND a.attnum > 0 AND NOT a.attisdropped AND NOT c.relname = ANY(%(excluded)s)
   AND (c.relkind <> 'c' OR EXISTS (SELECT 1 FROM pg_type ct WHERE ct.typrelid = c.oid))
   AND {NOT_EXT.format(cat="pg_class", oid="c.oid")}
 ORDER BY c.relname, a.attnum
"""

CONSTRAINTS = """
SELECT coalesce(c.relname, ''), coalesce(t.typname, ''), k.conname, k.contype::text,
       pg_get_constraintdef(k.oid), k.convalidated
  FROM pg_constraint k
  LEFT JOIN pg_class c ON c.oid = k.conrelid
  LEFT JOIN pg_type t ON t.oid = k.contypid
 WHERE k.connamespace = %(ns)s AND NOT coalesce(c.relname, '') = ANY(%(excluded)s)
   AND (c.oid IS NOT NULL OR t.oid IS NOT NULL)
 ORDER BY 1, 2, 3
"""

INDEXES = """
SELECT i.relname, c.relname, pg_get_indexdef(x.indexrelid), x.indisvalid
  FROM pg_index x
  JOIN pg_class i ON i.oid = x.indexrelid
  JOIN pg_class c ON c.oid = x.indrelid
 WHERE i.relnamespace = %(ns)s AND NOT c.relname = ANY(%(excluded)s)
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid
                     AND k.conrelid = x.indrelid AND k.contype IN ('p', 'u', 'x'))
 ORDER BY i.relname
"""

TYPES = f"""
SELECT t.typname, t.typtype::text,
       CASE t.typtype WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod) ELSE '' END,
       t.typnotnull, coalesce(t.typdefault, ''),
       coalesce((SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                   FROM pg_enum e WHERE e.enumtypid = t.oid), ''),
       coalesce((SELECT format_type(r.rngsubtype, NULL) FROM pg_range r
                  WHERE r.rngtypid = t.oid), ''),
       coalesce(array_to_string(t.typacl, ','), '')
  FROM pg_type t
 WHERE t.typnamespace = %(ns)s AND t.typtype IN ('e', 'd', 'c', 'r', 'b')
   AND (t.typtype <> 'c' OR EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid
                                                             AND c.relkind = 'c'))
   AND NOT EXISTS (SELECT 1 FROM pg_type a WHERE a.typarray = t.oid)
   AND {NOT_EXT.format(cat="pg_type", oid="t.oid")}
 ORDER BY t.typname
"""

ENUM_VALUES = """
SELECT t.typname, e.enumlabel, e.enumsortorder
  FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
 WHERE t.typnamespace = %(ns)s
 ORDER BY t.typname, e.enumsortorder
"""

SEQUENCES = f"""
SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin,
       s.seqmax, s.seqcache, s.seqcycle, coalesce(o.relname || '.' || a.attname, ''),
       coalesce(o.relname, '')
  FROM pg_sequence s
  JOIN pg_class c ON c.oid = s.seqrelid
  LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
       AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  LEFT JOIN pg_class o ON o.oid = d.refobjid
  LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
 WHERE c.relnamespace = %(ns)s AND NOT coalesce(o.relname, '') = ANY(%(excluded)s)
   AND {NOT_EXT.format(cat="pg_class", oid="c.oid")}
 ORDER BY c.relname
"""

FUNCTIONS = f"""
SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', p.prokind::text,
       coalesce(pg_get_function_result(p.oid), ''),
       CASE WHEN p.prokind = 'a' THEN '' ELSE md5(pg_get_functiondef(p.oid)) END,
       coalesce(array_to_string(p.proacl, ','), '')
  FROM pg_proc p
 WHERE p.pronamespace = %(ns)s AND {NOT_EXT.format(cat="pg_proc", oid="p.oid")}
 ORDER BY 1
"""

TRIGGERS = """
SELECT c.relname, g.tgname, pg_get_triggerdef(g.oid), g.tgenabled::text
  FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
 WHERE c.relnamespace = %(ns)s AND NOT g.tgisinternal AND NOT c.relname = ANY(%(excluded)s)
 ORDER BY c.relname, g.tgname
"""

POLICIES = """
SELECT c.relname, p.polname, p.polcmd::text, p.polpermissive,
       coalesce((SELECT string_agg(CASE r WHEN 0 THEN 'PUBLIC' ELSE r::regrole::text END, ','
                                   ORDER BY 1) FROM unnest(p.polroles) r), ''),
       coalesce(pg_get_expr(p.polqual, p.polrelid), ''),
       coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
 WHERE c.relnamespace = %(ns)s
 ORDER BY 1, 2
"""

# Privileges: NULL acl means the built-in default; normalised with acldefault so that a
# GRANT followed by its REVOKE compares equal to never granting.
GRANTS = f"""
WITH objs AS (
  SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view'
              WHEN 'm' THEN 'materialized view' ELSE 'table' END || ' ' || c.relname AS label,
         'rel:' || c.relname AS anchor,
         coalesce(c.relacl,
                  acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner))
           AS acl
    FROM pg_class c
   WHERE c.relnamespace = %(ns)s AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
     AND NOT c.relname = ANY(%(excluded)s) AND {NOT_EXT.format(cat="pg_class", oid="c.oid")}
     AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class o ON o.oid = d.refobjid
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.deptype IN ('a', 'i') AND o.relname = ANY(%(excluded)s))
  UNION ALL
  SELECT 'type ' || t.typname, 'type:' || t.typname,
         coalesce(t.typacl, acldefault('T'::"char", t.typowner))
    FROM pg_type t
   WHERE t.typnamespace = %(ns)s AND t.typtype IN ('e', 'd', 'r', 'b')
     AND NOT EXISTS (SELECT 1 FROM pg_type a WHERE a.typarray = t.oid)
     AND {NOT_EXT.format(cat="pg_type", oid="t.oid")}
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure::text, 'func:' || p.proname || '('
           || pg_get_function_identity_arguments(p.oid) || ')',
         coalesce(p.proacl, acldefault('f'::"char", p.proowner))
    FROM pg_proc p
   WHERE p.pronamespace = %(ns)s AND {NOT_EXT.format(cat="pg_proc", oid="p.oid")}
  UNION ALL
  SELECT 'schema ' || n.nspname, NULL, coalesce(n.nspacl, acldefault('n'::"char", n.nspowner))
    FROM pg_namespace n WHERE n.oid = %(ns)s
)
SELECT o.label, o.anchor, CASE x.grantee WHEN 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END,
       string_agg(x.privilege_type || CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION'
                                           ELSE '' END, ', ' ORDER BY x.privilege_type)
  FROM objs o, aclexplode(o.acl) x
 GROUP BY 1, 2, 3
 ORDER BY 1, 3
"""

COMMENTS = """
SELECT pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description,
       CASE WHEN d.classoid = 'pg_class'::regclass THEN 'rel:' || c.relname
            WHEN d.classoid = 'pg_type'::regclass THEN 'type:' || t.typname
            WHEN d.classoid = 'pg_proc'::regclass
              THEN 'func:' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
            WHEN d.classoid = 'pg_constraint'::regclass THEN
              coalesce('rel:' || kc.relname, 'type:' || kt.typname) END
  FROM pg_description d
  LEFT JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND c.oid = d.objoid
  LEFT JOIN pg_type t ON d.classoid = 'pg_type'::regclass AND t.oid = d.objoid
  LEFT JOIN pg_proc p ON d.classoid = 'pg_proc'::regclass AND p.oid = d.objoid
  LEFT JOIN pg_constraint k ON d.classoid = 'pg_constraint'::regclass AND k.oid = d.objoid
  LEFT JOIN pg_class kc ON kc.oid = k.conrelid
  LEFT JOIN pg_type kt ON kt.oid = k.contypid
 WHERE (c.relnamespace = %(ns)s AND NOT c.relname = ANY(%(excluded)s))
    OR t.typnamespace = %(ns)s OR p.pronamespace = %(ns)s OR k.connamespace = %(ns)s
    OR (d.classoid = 'pg_namespace'::regclass AND d.objoid = %(ns)s)
 ORDER BY 1
"""

SCHEMAS = """
SELECT nspname FROM pg_namespace
 WHERE nspname NOT LIKE 'pg\\_%%' AND nspname <> 'information_schema'
 ORDER BY 1
"""

EXTENSIONS = """
SELECT x.extname, x.extversion, n.nspname
  FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
 WHERE x.extname <> 'plpgsql'
 ORDER BY 1
"""
